"""What a user would do instead of `weightwatch analyze`: DuckDB computing
the same 14 per-account aggregates as baseline_polars.py over a JSON Lines
request log. Prints seconds and peak RSS. Usage: python3 baseline_duckdb.py FILE"""
import resource
import sys
import time

import duckdb

t = time.time()
con = duckdb.connect()
rows = con.execute(
    """
    SELECT account_id, count(*), sum(prompt_tokens), sum(completion_tokens) AS ct,
           avg(completion_tokens) AS ctm, avg((conversation_turns = 0)::int) AS st,
           avg((status = 429)::int) AS r429, avg(coalesce(logprobs, false)::int) AS lp,
           avg((temperature = 0)::int) AS t0, count(DISTINCT api_key_id) AS k,
           count(DISTINCT src_ip) AS ip, count(DISTINCT model) AS m,
           count(DISTINCT prompt) AS dp, min(ts)::VARCHAR AS a, max(ts)::VARCHAR AS b
    FROM read_json(?, format = 'newline_delimited', sample_size = 10000)
    GROUP BY account_id
    """,
    [sys.argv[1]],
).fetchall()
secs = time.time() - t
print(f"duckdb {duckdb.__version__}: {len(rows)} accounts, {secs:.2f} s, "
      f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
