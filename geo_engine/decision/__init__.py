"""The decision module (pure): offers, campaigns, the condition language and the decision."""
