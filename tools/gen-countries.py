#!/usr/bin/env python3
"""Generate data/reference/countries.json from Debian's iso-codes data.

English names come from /usr/share/iso-codes/json/iso_3166-1.json (common_name where
iso-codes has one), German names from the gettext catalogue iso_3166-1 (de). A short
list of overrides gives the short forms a German legal team would recognise where
the ISO names are inverted ("Congo, The Democratic Republic of the") or odd.

Requires the Debian package iso-codes (apt-get install iso-codes).
Usage: tools/gen-countries.py [OUTPUT]   (default: data/reference/countries.json)
Deterministic (sorted by id); prints nothing on success.
"""
import gettext
import json
import os
import sys

ISO_JSON = "/usr/share/iso-codes/json/iso_3166-1.json"
LOCALE_DIR = "/usr/share/locale"

# The set the service's validator accepts (service/domain/schema.c, COUNTRIES).
EXPECTED = set("""
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
VN VU WF WS YE YT ZA ZM ZW
""".split())

# The 27 EU member states; the EEA adds Iceland, Liechtenstein and Norway.
EU = set("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split())
EEA = EU | {"IS", "LI", "NO"}

# Short forms where the ISO / catalogue names are inverted, archaic or untranslated.
OVERRIDE_EN = {
    "CD": "Democratic Republic of the Congo",
    "CG": "Republic of the Congo",
    "FK": "Falkland Islands",
    "FM": "Micronesia",
    "PN": "Pitcairn Islands",
    "PS": "Palestine",
    "RU": "Russia",
    "VA": "Vatican City",
    "VG": "British Virgin Islands",
    "VI": "United States Virgin Islands",
}
OVERRIDE_DE = {
    "AX": "Åland",
    "BV": "Bouvetinsel",
    "CC": "Kokosinseln",
    "CG": "Republik Kongo",
    "CV": "Cabo Verde",
    "CX": "Weihnachtsinsel",
    "FK": "Falklandinseln",
    "FM": "Mikronesien",
    "FO": "Färöer",
    "GS": "Südgeorgien und die Südlichen Sandwichinseln",
    "KY": "Kaimaninseln",
    "PN": "Pitcairninseln",
    "PS": "Palästina",
    "RU": "Russland",
    "SX": "Sint Maarten (Niederländischer Teil)",
    "UM": "Kleinere Amerikanische Überseeinseln",
    "VA": "Vatikanstadt",
}


class _Untranslated(gettext.NullTranslations):
    """Fallback that tells a missing catalogue entry from a name spelt alike in German."""

    def gettext(self, message):
        return None


def main() -> int:
    if not os.path.exists(ISO_JSON):
        sys.stderr.write(f"{ISO_JSON} is missing: install the Debian package iso-codes\n")
        return 1
    with open(ISO_JSON, encoding="utf-8") as f:
        entries = json.load(f)["3166-1"]
    try:
        de = gettext.translation("iso_3166-1", localedir=LOCALE_DIR, languages=["de"])
    except OSError:
        sys.stderr.write(f"no German catalogue iso_3166-1.mo under {LOCALE_DIR}: install iso-codes\n")
        return 1
    de.add_fallback(_Untranslated())

    codes = {e["alpha_2"] for e in entries}
    if codes != EXPECTED:
        sys.stderr.write(
            "iso-codes does not match the validator's code list: "
            f"extra {sorted(codes - EXPECTED)}, missing {sorted(EXPECTED - codes)}\n"
        )
        return 1
    assert EEA <= EXPECTED and len(EU) == 27 and len(EEA) == 30

    docs = []
    for e in sorted(entries, key=lambda e: e["alpha_2"]):
        code = e["alpha_2"]
        msgid = e.get("common_name", e["name"])
        name_en = OVERRIDE_EN.get(code, msgid)
        name_de = OVERRIDE_DE.get(code)
        if name_de is None:
            name_de = de.gettext(msgid)
            if name_de is None and msgid != e["name"]:
                name_de = de.gettext(e["name"])  # common_name without its own translation
            if name_de is None:
                sys.stderr.write(f"no German name for {code} ({msgid}): add it to OVERRIDE_DE\n")
                return 1
        docs.append({"id": code, "name": {"de": name_de, "en": name_en}, "eu": code in EU, "eea": code in EEA})

    assert len(docs) == 249

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "data", "reference", "countries.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    text = json.dumps(docs, ensure_ascii=False, indent=2) + "\n"
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
