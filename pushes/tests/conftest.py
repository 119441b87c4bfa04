import pytest


@pytest.fixture(autouse=True)
def _fresh_push_cache():
    """Each test starts with no cached "has this callback's organisation an endpoint" answers."""
    from pushes import services

    services.forget_cache()
