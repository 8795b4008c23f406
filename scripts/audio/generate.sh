#!/usr/bin/env bash
# Rebuilds the recordings shipped with dialcast-scripts: the segments that
# speak values (say/...) and the prompts of the example scripts, in English
# (en) and Dutch (nl), synthesised with espeak-ng.
#
# Output: <this folder>/<lang>/<clip>.wav, 8000 Hz mono 16-bit PCM, leading
# and trailing silence trimmed, 4 dB below espeak-ng's level. Running it twice
# gives identical files (no dither, no randomness).
#
# Needs: espeak-ng and sox (Debian/Ubuntu: apt-get install espeak-ng sox).
# Usage: scripts/audio/generate.sh
#
# The clip names are the contract with the speaking rules in
# scripts/src/speak/ (see the table in speak/mod.rs); the text after each name
# is what the clip says. Change a text, rerun, and commit the WAV files.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

SPEED=160   # words per minute (espeak-ng default 175)
GAIN=-4     # dB applied after synthesis

for tool in espeak-ng sox; do
    command -v "$tool" >/dev/null || { echo "generate.sh: $tool not found" >&2; exit 1; }
done

# clip <lang> <voice> <name> <text>
clip() {
    local lang=$1 voice=$2 name=$3 text=$4
    local out="$here/$lang/$name.wav"
    mkdir -p "$(dirname "$out")"
    espeak-ng -v "$voice" -s "$SPEED" -w "$tmp/raw.wav" "$text"
    sox -D "$tmp/raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$out" \
        silence 1 0.01 0.1% reverse silence 1 0.01 0.1% reverse gain "$GAIN"
}

# Start from a clean slate so removed clips do not linger.
rm -rf "$here/en" "$here/nl"

# ---------------------------------------------------------------- English
EN=en-gb
for n in $(seq 0 99); do clip en $EN "say/$n" "$n"; done          # zero … ninety-nine
for h in $(seq 1 9); do clip en $EN "say/${h}00" "${h}00"; done    # one hundred … nine hundred
clip en $EN say/hundred  "hundred"
clip en $EN say/thousand "thousand"
clip en $EN say/million  "million"
clip en $EN say/and      "and"
clip en $EN say/oh       "oh"
clip en $EN say/the      "the"
clip en $EN say/of       "of"
clip en $EN say/am       "a.m."
clip en $EN say/pm       "p.m."
clip en $EN say/euro     "euro"
clip en $EN say/euros    "euros"
clip en $EN say/dollar   "dollar"
clip en $EN say/dollars  "dollars"
clip en $EN say/pound    "pound"
clip en $EN say/pounds   "pounds"
clip en $EN say/cent     "cent"
clip en $EN say/cents    "cents"
clip en $EN say/penny    "penny"
clip en $EN say/pence    "pence"
i=1
for m in January February March April May June July August September October November December; do
    clip en $EN "say/month_$i" "$m"; i=$((i + 1))
done
i=1
for o in first second third fourth fifth sixth seventh eighth ninth tenth \
         eleventh twelfth thirteenth fourteenth fifteenth sixteenth seventeenth \
         eighteenth nineteenth twentieth twenty-first twenty-second twenty-third \
         twenty-fourth twenty-fifth twenty-sixth twenty-seventh twenty-eighth \
         twenty-ninth thirtieth thirty-first; do
    clip en $EN "say/ordinal_$i" "$o"; i=$((i + 1))
done

# Prompts of the example scripts.
clip en $EN payment_intro        "This is a payment reminder for"
clip en $EN payment_due_date     "due on"
clip en $EN payment_arrangement  "If you cannot pay it all at once, please call us to arrange a payment plan."
clip en $EN payment_closing      "Please pay today. Thank you."
clip en $EN appointment_intro    "This is a reminder of your appointment on"
clip en $EN appointment_at       "at"
clip en $EN appointment_call_us  "If you cannot come, please call us on"
clip en $EN appointment_see_you  "We look forward to seeing you."
clip en $EN notice_intro         "This is a notice about invoice"
clip en $EN notice_overdue       "It has not been paid yet."
clip en $EN notice_menu          "If you have already paid, press 1. If you would like a payment plan, press 2."
clip en $EN notice_no_input      "We did not hear a choice."
clip en $EN notice_invalid       "That is not a valid choice."
clip en $EN notice_thanks_paid   "Thank you. We will check your payment."
clip en $EN notice_thanks_plan   "Thank you. We will contact you about a payment plan."
clip en $EN goodbye              "Goodbye."

# ------------------------------------------------------------------ Dutch
NL=nl
for n in $(seq 0 99); do clip nl $NL "say/$n" "$n"; done          # nul, één … negenennegentig
for h in $(seq 1 9); do clip nl $NL "say/${h}00" "${h}00"; done    # honderd … negenhonderd
clip nl $NL say/thousand "duizend"
clip nl $NL say/million  "miljoen"
clip nl $NL say/and      "en"
clip nl $NL say/uur      "uur"
clip nl $NL say/euro     "euro"
clip nl $NL say/dollar   "dollar"
clip nl $NL say/pound    "pond"
clip nl $NL say/cent     "cent"
clip nl $NL say/penny    "penny"
clip nl $NL say/pence    "pence"
i=1
for m in januari februari maart april mei juni juli augustus september oktober november december; do
    clip nl $NL "say/month_$i" "$m"; i=$((i + 1))
done

clip nl $NL payment_intro        "Dit is een betalingsherinnering voor"
clip nl $NL payment_due_date     "met vervaldatum"
clip nl $NL payment_arrangement  "Kunt u niet in één keer betalen? Bel ons dan voor een betalingsregeling."
clip nl $NL payment_closing      "Wilt u vandaag nog betalen? Dank u wel."
clip nl $NL appointment_intro    "Dit is een herinnering aan uw afspraak op"
clip nl $NL appointment_at       "om"
clip nl $NL appointment_call_us  "Kunt u niet komen? Bel ons dan op"
clip nl $NL appointment_see_you  "Tot dan."
clip nl $NL notice_intro         "Dit is een bericht over factuur"
clip nl $NL notice_overdue       "Deze is nog niet betaald."
clip nl $NL notice_menu          "Heeft u al betaald? Toets dan 1. Wilt u een betalingsregeling? Toets dan 2."
clip nl $NL notice_no_input      "We hebben geen keuze gehoord."
clip nl $NL notice_invalid       "Dat is geen geldige keuze."
clip nl $NL notice_thanks_paid   "Dank u wel. We controleren uw betaling."
clip nl $NL notice_thanks_plan   "Dank u wel. We nemen contact met u op over een betalingsregeling."
clip nl $NL goodbye              "Tot ziens."

echo "generate.sh: $(find "$here/en" "$here/nl" -name '*.wav' | wc -l) clips, $(du -sh "$here/en" "$here/nl" | awk '{print $1}' | paste -sd' ')"
