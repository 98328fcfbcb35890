#!/usr/bin/env bash
# Draws the app icon and one tray icon per node state with ImageMagick. The PNGs are committed; run
# this only to change them. Needs Debian's imagemagick (`convert`).
set -euo pipefail
cd "$(dirname "$0")/.."
CONVERT=/usr/bin/convert

# $1 file, $2 size, $3 colour, $4 glyph (draw commands on a 64x64 canvas, scaled)
draw() {
  local out=$1 size=$2 colour=$3 glyph=$4
  $CONVERT -size 64x64 xc:none -fill "$colour" -draw "circle 32,32 32,2" \
    -fill white -stroke none -draw "$glyph" -resize "${size}x${size}" -strip "PNG32:$out"
}
# A wheat-ear-like glyph: a stem and three grains, for the app itself.
EAR="rectangle 30,20 34,54 ellipse 32,16 6,9 0,360 ellipse 24,30 5,8 0,360 ellipse 40,30 5,8 0,360 ellipse 24,44 5,8 0,360 ellipse 40,44 5,8 0,360"
for s in 32 128 256 512; do draw "icons/${s}x${s}.png" "$s" '#1e6b47' "$EAR"; done
cp icons/512x512.png icons/icon.png

# Tray: one glyph per state, distinct in shape as well as colour.
draw icons/tray/sharing.png 64 '#2e9d68' "$EAR"
draw icons/tray/paused.png 64 '#6f6f6f' "rectangle 21,18 29,46 rectangle 35,18 43,46"
draw icons/tray/capped.png 64 '#c98500' "rectangle 16,28 48,36"
draw icons/tray/offline.png 64 '#4d6fae' "ellipse 32,32 14,14 0,360 fill #4d6fae ellipse 32,32 8,8 0,360"
draw icons/tray/error.png 64 '#b3261e' "rectangle 28,14 36,38 rectangle 28,44 36,52"
ls -l icons icons/tray
