"""Which tables hold a customer's data: the discovery queries live in
adapters/db/personal_tables.py; re-exported here for the erasure service, which imports them
from this module."""

from __future__ import annotations

from adapters.db.personal_tables import PersonalTables, personal_tables, subject_ids

__all__ = ["PersonalTables", "personal_tables", "subject_ids"]
