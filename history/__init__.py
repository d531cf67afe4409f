"""The history service: orders and fills from `executions`, kept in SQL and served over REST.

- :mod:`history.projection`: pure; an ExecutionReport's events as order states and fill rows.
- :mod:`history.store`: the database (SQLite by default, PostgreSQL by URL), its schema versions,
  the batch write (rows and the `executions` positions in one transaction) and the reads.
- :mod:`history.writer`: the Kafka loop, resuming from the positions the database holds.
- :mod:`history.api`: the REST routes under ``/api/v1`` (signed keys, one account's rows only).
"""
