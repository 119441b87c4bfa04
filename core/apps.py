import logging
import time
import uuid

from django.apps import AppConfig

# One log line per q2 task (docs/operations.md, "Logs"); its JSON form and the masking of
# secrets are settings.LOGGING's (fleetportal/logs.py), like every other line.
task_log = logging.getLogger("fleetportal.task")
_started: dict[str, float] = {}  # task id → perf_counter, in the worker process that runs it


def _action_id_of(task: dict) -> str | None:
    """The action a task is about, when its first argument (or `action_id`) is one: remotes' tasks take ids."""
    for value in [*(task.get("args") or ())[:1], (task.get("kwargs") or {}).get("action_id")]:
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, str):
            try:
                return str(uuid.UUID(value))
            except ValueError:
                continue
    return None


def task_started(sender, task=None, **kwargs) -> None:
    """django_q.signals.pre_execute: in the worker, just before the function runs."""
    if task is not None:
        if len(_started) > 1000:  # a task killed between the two signals leaves its entry
            _started.clear()
        _started[task.get("id")] = time.perf_counter()


def task_finished(sender, task=None, **kwargs) -> None:
    """django_q.signals.post_execute_in_worker: in the same worker, once the function returned or raised.

    Not `post_execute`: the cluster's monitor process sends that one, and it did not see the
    start (q2's own `started` is when the task was enqueued, not when it ran)."""
    if task is None:
        return
    started = _started.pop(task.get("id"), None)
    if not task_log.isEnabledFor(logging.INFO):
        return
    func = task.get("func")
    name = func if isinstance(func, str) else f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', func)}"
    success = bool(task.get("success"))
    fields = {"event": "task", "task": name, "task_id": task.get("id"), "success": success}
    if started is not None:
        fields["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    if task.get("group"):
        fields["group"] = task["group"]
    action_id = _action_id_of(task)
    if action_id:
        fields["action_id"] = action_id
    # Never the arguments nor the result: the error is q2's own "Failed …" line, masked like any other.
    task_log.log(
        logging.INFO if success else logging.ERROR,
        "task %s %s in %s ms", name, "done" if success else "failed", fields.get("duration_ms", "?"), extra=fields,
    )


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self):
        from django_q.signals import post_execute_in_worker, pre_execute

        pre_execute.connect(task_started, dispatch_uid="fleetportal-task-started")
        post_execute_in_worker.connect(task_finished, dispatch_uid="fleetportal-task-finished")
