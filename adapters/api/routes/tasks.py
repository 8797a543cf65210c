"""Call-center tasks (admin): `GET /v1/call-center-tasks?status=&campaign_id=` and
`POST /v1/call-center-tasks/{id}/done` / `.../cancel`. A campaign whose action is
`call_center_task` writes one task per winning decision instead of a message."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from adapters.api.deps import Svc, require
from adapters.api.errors import ERROR_RESPONSES, ApiError
from adapters.api.models import Strict
from adapters.auth import Principal
from adapters.db import tasks
from adapters.db.types import Record

router = APIRouter(prefix="/v1", tags=["call-center"], responses=ERROR_RESPONSES)
Admin = Annotated[Principal, Depends(require())]
Status = Literal["open", "done", "cancelled"]
Outcome = Literal["reached", "no_answer", "declined", "wrong_number", "retained", "other"]
TaskId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class TaskOut(BaseModel):
    id: int
    customer_id: str
    campaign_id: str
    offer_id: str | None
    decision_id: int
    trigger_instance: str
    reason: str = Field(description="Why to call: the trigger, segment, RFM, churn risk")
    priority: int
    status: str
    created_at: datetime
    due_at: datetime
    done_at: datetime | None
    outcome: str | None
    note: str | None
    done_by: str | None


class TaskList(BaseModel):
    tasks: list[TaskOut]
    next_after_id: int | None = None


class DoneIn(Strict):
    outcome: Outcome = Field(description="What the call gave")
    note: str | None = Field(None, max_length=2000)


class CancelIn(Strict):
    note: str | None = Field(None, max_length=2000)


def _out(r: Record) -> TaskOut:
    return TaskOut(**dict(r))


@router.get("/call-center-tasks", response_model=TaskList, summary="Call-center tasks")
async def list_tasks(
    svc: Svc,
    _: Admin,
    status: Annotated[Status | None, Query(description="open: the queue to work")] = None,
    campaign_id: Annotated[str | None, Query(max_length=128)] = None,
    customer_id: Annotated[str | None, Query(max_length=256)] = None,
    after_id: Annotated[int, Query(ge=0, le=2**63 - 1, description="Keyset pagination")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> TaskList:
    rows = await tasks.list_tasks(svc.pool, status, campaign_id, customer_id, limit, after_id)
    out = [_out(r) for r in rows]
    return TaskList(tasks=out, next_after_id=out[-1].id if len(out) == limit else None)


async def _close(
    svc: Svc, p: Principal, task_id: int, status: str, outcome: str, note: str | None
) -> TaskOut:
    r = await tasks.close(svc.pool, task_id, status, outcome, note, p.key_id)
    if r is not None:
        return _out(r)
    old = await tasks.get(svc.pool, task_id)
    if old is None:
        raise ApiError(404, f"no call-center task {task_id}")
    raise ApiError(409, f"task {task_id} is already {old['status']}")


@router.post(
    "/call-center-tasks/{task_id}/done", response_model=TaskOut, summary="Close a task: called"
)
async def done_task(task_id: TaskId, body: DoneIn, svc: Svc, p: Admin) -> TaskOut:
    """An open task only (409 otherwise); the outcome and note are kept for reporting."""
    return await _close(svc, p, task_id, "done", body.outcome, body.note)


@router.post("/call-center-tasks/{task_id}/cancel", response_model=TaskOut, summary="Cancel a task")
async def cancel_task(task_id: TaskId, body: CancelIn, svc: Svc, p: Admin) -> TaskOut:
    """An open task only (409 otherwise). A cancelled call no longer counts toward pressure."""
    return await _close(svc, p, task_id, "cancelled", "cancelled", body.note)
