"""`officegw simulate`: a building in a box, driven against a running gateway.

The data path, module by module:

    scenario file ─▶ schema ─▶ plan ─▶ world ─────────────▶ link (MQTT) ─▶ gateway
    (YAML)           (pydantic,  (rooms,   (people, devices,   ▲               │
                     path-named  devices,  physics, faults:    │ commands      │ HTTP
                     errors)     topics)   pure, seeded,       │               ▼
                                           simulated time)     runner ◀── gateway_http
                                               │                 │ (pace: --speed N|max)
                                               ▼                 ▼
                                             truth ───────────▶ score (one JSON line)

Everything left of the runner is pure and clock-injected: the same scenario, seed
and start give the same messages. Only `link` (paho) and `gateway_http` (httpx)
do I/O; the runner paces them. The simulators never import the gateway: they
reach it over MQTT and HTTP only, as any other system would.
"""
