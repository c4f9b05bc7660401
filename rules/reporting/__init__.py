"""What the reports compute, as pure functions over rows from the store.

Every function takes the rows (occupancy changes, readings, bookings, commands),
the window and the site's calendar as arguments and returns numbers; none reads
the clock, the store or the settings. `gateway.reports` fetches the rows
(gateway/storage/report_queries.py), calls these per room and puts the results into
the report table.

- `spans`: time as sorted, disjoint [start, end) spans: cut by buckets, intersected;
- `calendar`: business hours and tariff bands as spans and prices (site time);
- `readings`: how long a reading counts (held until the next, at most `hold`);
- `utilization`, `energy`, `comfort`: one room's figures per bucket.
"""
