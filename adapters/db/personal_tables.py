"""Which tables hold a customer's data, discovered from information_schema: a table added by a
later migration is exported and erased without an edit here, as long as it names the customer
in a `customer_id` column (the project's convention) or a device in `device_id`."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class PersonalTables:
    by_customer: list[str]  # tables with a customer_id column
    by_device: list[str]  # tables with a device_id column


async def personal_tables(conn: asyncpg.Connection) -> PersonalTables:
    rows = await conn.fetch(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c"
        " JOIN information_schema.tables t USING (table_schema, table_name)"
        " WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'"
        " AND c.column_name IN ('customer_id', 'device_id') ORDER BY c.table_name"
    )
    return PersonalTables(
        by_customer=[r["table_name"] for r in rows if r["column_name"] == "customer_id"],
        by_device=[r["table_name"] for r in rows if r["column_name"] == "device_id"],
    )


async def subject_ids(conn: asyncpg.Connection, customer_id: str) -> tuple[list[str], list[str]]:
    """(customer ids, device ids) that are this person: the id itself, the devices linked to it
    and the `device:<id>` customers those devices were before being linked."""
    devices = [
        r["value"]
        for r in await conn.fetch(
            "SELECT value FROM identities WHERE customer_id = $1 AND type = 'device'", customer_id
        )
    ]
    if customer_id.startswith("device:"):
        device = customer_id.removeprefix("device:")
        owner = await conn.fetchval(
            "SELECT customer_id FROM identities WHERE type = 'device' AND value = $1", device
        )
        # a device since linked to a customer is that customer's now: its rows are theirs
        if owner is None or owner == customer_id:
            devices.append(device)
    customers = sorted({customer_id, *("device:" + d for d in devices)})
    return customers, sorted(set(devices))


def subject_filter(
    tables: PersonalTables, table: str, customers: list[str], devices: list[str]
) -> tuple[str, list[list[str]]]:
    """The WHERE clause (and its arguments) selecting a subject's rows of `table`."""
    conds: list[str] = []
    args: list[list[str]] = []
    if table in tables.by_customer:
        conds.append("customer_id = ANY($1::text[])")
        args.append(customers)
    if table in tables.by_device and devices:
        conds.append(f"device_id = ANY(${len(args) + 1}::text[])")
        args.append(devices)
    return " OR ".join(conds), args
