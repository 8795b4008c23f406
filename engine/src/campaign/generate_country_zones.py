#!/usr/bin/env python3
"""Writes country_zones.rs from the IANA zone.tab (Debian: package tzdata).

Run from the repository root:
    python3 engine/src/campaign/generate_country_zones.py /usr/share/zoneinfo/zone.tab
"""
import collections
import sys

source = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/zoneinfo/zone.tab"
zones = collections.OrderedDict()
with open(source) as tab:
    for line in tab:
        if line.startswith("#") or not line.strip():
            continue
        country, _coordinates, zone = line.split("\t")[:3]
        zones.setdefault(country, []).append(zone.strip())

lines = [
    "//! Time zones per country (ISO 3166-1 alpha-2), generated from the IANA",
    "//! time zone database's `zone.tab` (public domain) by",
    "//! `engine/src/campaign/generate_country_zones.py`. Do not edit by hand.",
    "",
    "/// `(country, zones)`, sorted by country.",
    "pub const COUNTRY_ZONES: &[(&str, &[&str])] = &[",
]
for country in sorted(zones):
    quoted = ", ".join('"%s"' % zone for zone in zones[country])
    lines.append('    ("%s", &[%s]),' % (country, quoted))
lines.append("];")
with open("engine/src/campaign/country_zones.rs", "w") as out:
    out.write("\n".join(lines) + "\n")
