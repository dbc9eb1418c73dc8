"""``make chaos`` rewrites docs/reliability.md with its run's record, and keeps the history the
team wrote above it (it used to replace the whole page)."""

from tests.chaos.report import INTRO, RECORD_HEADING, with_history


def _report(verdict: str) -> str:
    return f"{INTRO}\n**Verdict: {verdict}**. Run `x`.\n\n## Orders\n\n| sent |\n"


def test_a_new_run_replaces_the_record_and_keeps_the_history() -> None:
    previous = with_history(_report("FAIL"), "")
    previous = previous.replace(
        INTRO, f"{INTRO}\n## Status\n\nFixed the hang.\n\n{RECORD_HEADING}\n\n", 1
    )

    page = with_history(_report("PASS"), previous)

    assert page.startswith(INTRO)
    assert "## Status\n\nFixed the hang." in page
    assert page.index("Fixed the hang.") < page.index(RECORD_HEADING) < page.index("PASS")
    assert "FAIL" not in page
    assert page.count(RECORD_HEADING) == 1


def test_a_page_with_no_history_is_the_report_itself() -> None:
    assert with_history(_report("PASS"), "") == _report("PASS")
    assert with_history(_report("PASS"), "# something else\n") == _report("PASS")
