"""The query stage's SQL client against a misbehaving SqlSearch."""

import asyncio

import pytest
from faulty_skyserver import FaultySkyServer, ServedInThread

from nightskynet.sky.http_retry import PermanentError, RetryPolicy, TransientError
from nightskynet.stages import query

POLICY = RetryPolicy(max_attempts=3, timeout_s=5, backoff_base_s=0.01, backoff_max_s=0.05)


def fetch(server: FaultySkyServer, page_size: int = 100, limit: int = 0):
    with ServedInThread(server.app()) as served:
        return asyncio.run(query.fetch_catalog(served.url, "dr17", ["zooSpec"], page_size, limit, POLICY))


def test_pages_until_an_empty_page_whatever_the_server_cap():
    server = FaultySkyServer("none", failures=0)  # answers at most 3 rows per page, 7 rows in all
    catalog = fetch(server, page_size=100)
    assert catalog["objid"].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert len(server.sql_pages) == 4  # 3 + 3 + 1 rows, then the empty page that ends it
    assert "JOIN PhotoObj AS p ON p.objid = z.objid" in server.sql_pages[0]


@pytest.mark.parametrize("fault", ["503html", "500json", "html200"])
def test_transient_answers_are_retried(fault):
    server = FaultySkyServer(fault, failures=2)
    catalog = fetch(server)
    assert catalog["objid"].tolist() == [1, 2, 3, 4, 5, 6, 7]


def test_a_json_500_that_persists_raises_quoting_the_server_after_bounded_attempts():
    server = FaultySkyServer("500json", failures=10**6)
    with pytest.raises(TransientError, match="Query timeout expired") as info:
        fetch(server)
    assert info.value.attempts == 3 and sum(server.requests.values()) == 3


def test_a_400_is_not_retried_and_quotes_the_error_message():
    server = FaultySkyServer("400json", failures=10**6)
    with pytest.raises(PermanentError, match="Incorrect syntax near 'TOP'") as info:
        fetch(server)
    assert info.value.attempts == 1 and sum(server.requests.values()) == 1


def test_an_html_body_is_never_parsed_as_data():
    with pytest.raises(TransientError, match="HTML page instead of data"):
        query.check_sql_answer(200, {}, b"<html><body>Skyserver Error</body></html>")
    with pytest.raises(query.SkyServerError):
        query.parse_table_csv(b"<html>oops</html>")


def test_rows_are_validated_and_drops_counted():
    import pandas as pd

    frame = pd.DataFrame(
        {
            "objid": [1, 2, 2, 3, 4],
            "ra": [10.0] * 5,
            "dec": [0.0] * 5,
            "nvote": [30, 30, 30, 0, 30],
            "p_el": [0.5, 0.5, 0.5, 0.5, 1.2],
            "p_cw": [0.5] * 5,
            "p_acw": [0.0] * 5,
            "p_edge": [0.0] * 5,
            "p_dk": [0.0] * 5,
            "p_mg": [0.0] * 5,
            "p_cs": [0.5] * 5,
            "petroR90_r": [5.0] * 5,
        }
    )
    kept, dropped = query.validate_rows(frame)
    assert kept["objid"].tolist() == [1, 2]
    assert dropped == {"p_el outside [0, 1]": 1, "nvote <= 0": 1, "duplicate objid": 1}
