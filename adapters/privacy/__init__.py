"""Privacy as the CNIL expects it (issue 8): location consent gate, retention purge, export and
erasure of a customer, audit log of staff and admin changes."""
