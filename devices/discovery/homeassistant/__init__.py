"""Home Assistant MQTT discovery, read as input: `<prefix>/<component>/[<node>/]<object>/config`.

Zigbee2MQTT, Tasmota (SetOption19), Shelly discovery scripts, ESPHome, zwave2mqtt
and many bridges announce each entity of a device with a retained JSON config. This
module reads one config into an `Entity` (`parse_config`) and the entities of one
device into an `AnnouncedDevice` (`assemble`).

Read: the components `sensor`, `binary_sensor`, `light` (default and `json`
schemas), `switch`, `lock` and `climate`, also inside a device-based config
(`<prefix>/device/<id>/config` with `cmps`); the abbreviated keys (`stat_t`,
`val_tpl`, `dev` -> `ids`, ...) and the `~` base topic; `state_topic` with
`value_template` (templates.py: `{{ value_json.x }}`, filters, no engine);
`device_class` in the native vocabulary; `unit_of_measurement` (°F, K, kW, Wh
converted; a unit that does not fit the class is a problem, not a guess);
`payload_on`/`payload_off`, `state_on`/`state_off`, `state_locked`/`state_unlocked`;
`availability_topic` or `availability` with its payloads and template; commands
back through `command_topic` (and `brightness_command_topic`, `on_command_type`,
`brightness_scale`) for lights, switches and locks, and the temperature and mode
command topics of climates.

| component | device_class / topic | field |
|---|---|---|
| sensor | temperature, humidity, carbon_dioxide, illuminance, power, energy, battery | same name (`co2`) |
| binary_sensor | occupancy, motion, presence | `occupancy` (presence also `presence`) |
| binary_sensor | door, window, opening, garage_door | `contact`, inverted (on = open) |
| light | state / brightness | `state` ON/OFF, `brightness` 0-254 from `brightness_scale` |
| switch | state | `state` ON/OFF |
| lock | state | `state` LOCK/UNLOCK |
| climate | current temperature, target temperature, mode | `temperature`, `setpoint`, `mode` |

Not read (reported per entity as a `Problem`, never guessed): templates outside the
supported forms, `command_template`s, the `template` light schema, units that do not
fit their class (Tasmota 8 announced its kWh counters as class `power`), sensors
without a device class (linkquality, RSSI, ...: listed as ignored). Each vocabulary
field comes from one entity: a second entity with the same field (the other relays
of a four-relay Tasmota) is reported, not merged.
"""

from devices.discovery.homeassistant.device import ID_PREFIX, assemble, device_id_of
from devices.discovery.homeassistant.entities import (
    COMPONENTS,
    Entity,
    config_topic_parts,
    parse_config,
    topic_problem,
)
from devices.discovery.homeassistant.values import SOURCE

__all__ = [
    "COMPONENTS",
    "ID_PREFIX",
    "SOURCE",
    "Entity",
    "assemble",
    "config_topic_parts",
    "device_id_of",
    "parse_config",
    "topic_problem",
]
