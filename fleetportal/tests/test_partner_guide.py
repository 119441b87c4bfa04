"""docs/partner-api.md's Python examples work: each ```python block, in order, against the live portal.

The blocks follow on from each other (one namespace), with `BASE`, `TOKEN` and `VIN` filled
in as the guide asks its reader to; a block preceded by `<!-- not run -->` is left out (it
needs what only a partner has, e.g. an incoming webhook request). A q2 cluster runs the
commands, so the polling example sees its action end.
"""

import re
from pathlib import Path

import pytest
from django.conf import settings

from accounts.models import Role, Scope

GUIDE = Path(settings.BASE_DIR) / "docs" / "partner-api.md"
BLOCK = re.compile(r"(<!-- not run -->\s*\n)?```python\n(.*?)```", re.S)


def blocks() -> list[tuple[int, str]]:
    text = GUIDE.read_text()
    return [(text[: m.start()].count("\n") + 1, m.group(2)) for m in BLOCK.finditer(text) if not m.group(1)]


def test_the_guide_has_python_examples():
    assert len(blocks()) >= 4


def test_the_guides_python_examples_run(stack, demo_fleet, q2_cluster, make_member, make_token):
    vehicle = demo_fleet.vehicles.order_by("vin").first()
    namespace = {"BASE": stack.url, "TOKEN": make_token(make_member("guide-reader", Role.ADMIN), list(Scope.values)), "VIN": vehicle.vin}
    for line, code in blocks():
        try:
            exec(compile(code, f"{GUIDE.name}:{line}", "exec"), namespace)  # noqa: S102 - our own documentation
        except Exception as exc:
            pytest.fail(f"the example at docs/partner-api.md line {line} fails: {exc!r}\n{code}")
    assert namespace["action"]["status"] == "success", namespace["action"]
