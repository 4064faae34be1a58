from checks.report import State
from tests.conftest import result, texts


def test_healthy(healthy, run):
    report = run(healthy)
    bad = [(r.fault.id, r.state, texts(r)) for r in report.all_results() if r.state is not State.CLEAR]
    assert bad == []
