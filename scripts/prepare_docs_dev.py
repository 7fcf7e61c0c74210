"""The docs-search development set (issue 23): questions about command-line tools answered by a
documentation page, built from the section 1 and 8 manual pages of pinned Debian packages.

    python scripts/prepare_docs_dev.py [--out ~/.cache/m2vsearch/docs-dev] [--debs ~/.cache/m2vsearch/docs-dev-debs]
        [--data ../shared/data]

- Downloads the `PINNED` packages with `apt-get download NAME=VERSION` (kept in `--debs`; fails if a pinned
  version is no longer in the apt sources) and reads their English pages, `usr/share/man/man{1,8}/*`
  (not the translations in `man/xx/`), skipping links, `.so` redirects and byte-identical copies.
- Renders man(7) and mdoc(7) troff to markdown with the small stripper below (no groff): each page
  becomes `corpus/<command>.<section>.md`, `# <command>` then the page's sections as `## HEADING`,
  **without its NAME section**. The first package that holds a command name wins.
- The query of a page is the description in its NAME line ("tar - an archiving utility" -> "an archiving
  utility"). No query for a page whose description is under 3 words, a stub ("replaced by pamtofits"),
  shared by another page, or a query of the training pairs `DATA/train/manpages/pairs.jsonl`
  (case-insensitive, trailing period ignored); such pages stay in the corpus as distractors. At most 50
  queries per package (seeded sample), so netpbm and nvme-cli do not dominate. Pages over 1M characters
  (ffmpeg-all and the like, concatenations of other pages) and under 300 (stubs) are left out. The
  description may still occur in the page's other sections (`verbatim` in pages.jsonl; about 5%).
- Writes `queries.jsonl` ({"_id", "text"}), `qrels.tsv`, `qrels-dev.tsv` and `qrels-heldout.tsv` (a seeded
  50/50 split; `query-id`, `corpus-id` = `corpus/<file>` relative to OUT, `score`), `pages.jsonl` (every
  page: package, file, description, why it has no query) and `manifest.json` (packages, versions, sha256
  of each .deb, counts). Deterministic for the same .deb files.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import random
import re
import shutil
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

SEED = 23
MIN_WORDS = 3
MIN_DOC_CHARS = 300  # a rendered page shorter than this (NAME removed) is a stub: left out
MAX_DOC_CHARS = 1_000_000  # ffmpeg-all, ffprobe-all, ffplay-all: concatenations of other pages, left out
STUB = re.compile(r"^(replaced by|obsoleted? by|obsolete|deprecated|see )", re.I)  # no query for these
MAX_QUERIES_PER_PACKAGE = 50
# Debian bookworm (main), as downloaded on 2026-07 (apt-get download NAME=VERSION).
PINNED = """
a2ps=1:4.14-8 acl=2.3.1-3 alsa-utils=1.2.8-1
apache2-bin=2.4.68-1~deb12u1 apache2-utils=2.4.68-1~deb12u1 apg=2.2.3.dfsg.1-5+b2
apt=2.6.1 apt-utils=2.6.1 aria2=1.36.0-1
arping=2.23-1 aspell=0.60.8-4+b1 astyle=3.1-3+b1
at=3.2.5-1+b1 attr=1:2.5.1-4 autoconf=2.71-3
automake=1:1.16.5-1.3 avahi-utils=0.8-10+deb12u1 bash=5.2.15-2+b13
bc=1.07.1-3+b1 bind9=1:9.18.49-1~deb12u1 bind9-dnsutils=1:9.18.49-1~deb12u1
bison=2:3.8.2+dfsg-1+b1 bluez=5.66-1+deb12u2 bsdextrautils=2.38.1-5+deb12u3
bsdutils=1:2.38.1-5+deb12u3 btrfs-progs=6.2-1+deb12u2 bzip2=1.0.8-5+b1
chrony=4.3-2+deb12u3 cifs-utils=2:7.0-2 clang-14=1:14.0.6-12
cmake=3.25.1-1 coreutils=9.1-1 cpio=2.13+dfsg-7.1
cpufrequtils=008-2 cron=3.0pl1-162 cryptsetup-bin=2:2.6.1-4~deb12u2
cscope=15.9-1 cups-bsd=2.4.2-3+deb12u9 cups-client=2.4.2-3+deb12u9
curl=7.88.1-10+deb12u15 dash=0.5.12-2 datamash=1.7-2
dc=1.07.1-3+b1 debhelper=13.11.4 debianutils=5.7-0.5~deb12u1
debootstrap=1.0.128+nmu2+deb12u2 desktop-file-utils=0.26-1 detox=1.4.5-4
devscripts=2.23.4+deb12u2 dialog=1.3-20230209-1 diffutils=1:3.8-4
djvulibre-bin=3.5.28-2.2~deb12u1 dmidecode=3.4-1 dmsetup=2:1.02.185-2
dnsmasq-base=2.90-4~deb12u2 dos2unix=7.4.3-1 dosfstools=4.2-1
dpkg=1.21.23 dpkg-dev=1.21.23 dput-ng=1.35+deb12u1
dupload=2.9.12 e2fsprogs=1.47.0-2+b2 ed=1.19-1
enscript=1.6.5.90-3+b1 ethtool=1:6.1-1 expect=5.45.4-2+b1
fail2ban=1.0.2-2 fakechroot=2.20.1+ds-15 fakeroot=1.31-1.2
fd-find=8.6.0-3 fdisk=2.38.1-5+deb12u3 ffmpeg=7:5.1.9-0+deb12u1
file=1:5.44-3 findutils=4.9.0-4 flac=1.4.2+ds-2
flex=2.6.4-8.2 fontconfig=2.14.1-4 fuse3=3.14.0-4
fzf=0.38.0-1+b1 gawk=1:5.2.1-2 gdb=13.1-3
gdisk=1.0.9-2.1 gettext=0.21-12 ghostscript=10.0.0~dfsg-11+deb12u8
git-man=1:2.39.5-0+deb12u3 global=6.6.9-1 gnuplot-nox=5.4.4+dfsg1-2+b2
gpg=2.2.40-1.1+deb12u2 gpg-agent=2.2.40-1.1+deb12u2 gpgv=2.2.40-1.1+deb12u2
graphicsmagick=1.4+really1.3.40-4+deb12u1 graphviz=2.42.2-7+deb12u1 grep=3.8-5
groff=1.22.4-10 groff-base=1.22.4-10 grub-common=2.06-13+deb12u2
gstreamer1.0-tools=1.22.0-2+deb12u1 gzip=1.12-1 haproxy=2.6.12-1+deb12u3
hdparm=9.65+ds-1 hostname=3.23+nmu1 hping3=3.a2.ds2-10
html-xml-utils=7.7-1.1 htop=3.2.2-2 hunspell=1.7.1-1
hwloc=2.9.0-1 imagemagick-6.q16=8:6.9.11.60+dfsg-1.6+deb12u11 indent=2.2.12-4+deb12u3
info=6.8-6+b1 initramfs-tools=0.142+deb12u3 inxi=3.3.26-1-1
iotop=0.6-42-ga14256a-0.1+b2 iperf3=3.12-1+deb12u2 ipmitool=1.8.19-4+deb12u2
iproute2=6.1.0-3 iptables=1.8.9-2 iputils-arping=3:20221126-1+deb12u1
iputils-ping=3:20221126-1+deb12u1 iputils-tracepath=3:20221126-1+deb12u1 isc-dhcp-client=4.4.3-P1-2
iw=5.19-1 jq=1.6-2.1+deb12u2 keyutils=1.6.3-2
kmod=30+20221128-1 knot-dnsutils=3.2.6-1 krb5-user=1.20.1-2+deb12u5
lame=3.100-6 ldap-utils=2.5.13+dfsg-5 ldnsutils=1.8.3-1+b1
less=590-2.1~deb12u2 lftp=4.9.2-2+b1 libfile-mimeinfo-perl=0.33-1
libimage-exiftool-perl=12.57+dfsg-1 libpam-modules=1.5.2-6+deb12u2 libtool-bin=2.4.7-7~deb12u1
libxml2-utils=2.9.14+dfsg-1.3~deb12u6 lighttpd=1.4.69-1 lintian=2.116.3+deb12u1
linux-cpupower=6.1.176-1 llvm-14=1:14.0.6-12 login=1:4.13+dfsg1-1+deb12u2
logrotate=3.21.0-1 lsb-release=12.0-1 lshw=02.19.git.2021.06.19.996aaad9c7-2+b1
lsof=4.95.0-1 ltrace=0.7.3-6.4 lvm2=2.03.16-2
m4=1.4.19-3 mailutils=1:3.15-4 make=4.3-4.1
makepasswd=1.10-14 man-db=2.11.2-2 manpages=6.03-2
mariadb-client=1:10.11.18-0+deb12u1 mdadm=4.2-5 mediainfo=23.04-1
miller=6.6.0-2+b3 mkvtoolnix=74.0.0-1 mmdebstrap=1.3.5-7
mmv=2.3-1 moreutils=0.67-1 mount=2.38.1-5+deb12u3
mtools=4.0.33-1+really4.0.32-1 mtr-tiny=0.95-1 nano=7.2-1+deb12u1
nasm=2.16.01-1 ncdu=1.18-0.2 ncurses-bin=6.4-4
net-tools=2.10-0.1+deb12u2 netcat-openbsd=1.219-1 netpbm=2:11.01.00-2
netsniff-ng=0.6.8-3 network-manager=1.42.4-1+deb12u1 nfs-common=1:2.6.2-4+deb12u1
nftables=1.0.6-2+deb12u2 ngrep=1.47+ds1-5+b1 nmap=7.93+dfsg1-1
ntfs-3g=1:2022.10.3-1+deb12u3 ntpsec=1.2.2+dfsg1-1+deb12u1 numactl=2.0.16-1
nvi=1.81.6-17+b2 nvme-cli=2.4+really2.3-3 openssh-client=1:9.2p1-2+deb12u10
openssh-server=1:9.2p1-2+deb12u10 openssl=3.0.20-1~deb12u2 openvpn=2.6.14-0+deb12u2
opus-tools=0.2-1+b1 p7zip-full=16.02+really26.01+dfsg-0+deb12u1 parallel=20221122+ds-2
parted=3.5-3 passwd=1:4.13+dfsg1-1+deb12u2 patch=2.7.6-7
pbuilder=0.231 pciutils=1:3.9.0-4 perl=5.36.0-7+deb12u3
poppler-utils=22.12.0-2+deb12u2 postfix=3.7.11-0+deb12u1 privoxy=3.0.34-1
procps=2:4.0.2-3 proxychains4=4.16-2 psmisc=23.6-1
pulseaudio-utils=16.1+dfsg1-2+b1 pv=1.6.20-1 pwgen=2.08-2
python3=3.11.2-1+b1 qpdf=11.3.0-1+deb12u1 quilt=0.67+really0.66-1
quota=4.06-1+b2 ranger=1.9.3-5 recode=3.6-25
redis-tools=5:7.0.15-1~deb12u7 rename=2.01-1 reprepro=5.3.1-1+deb12u2
ripgrep=13.0.0-4+b2 rsync=3.2.7-1+deb12u6 rsyslog=8.2302.0-1+deb12u1
ruby=1:3.1 samba-common-bin=2:4.17.12+dfsg-0+deb12u4 sbuild=0.85.0
schroot=1.6.13-3+b2 screen=4.9.0-4 sed=4.9-1+deb12u1
sg3-utils=1.46-3 shared-mime-info=2.2-1 sharutils=1:4.15.2-9
shellcheck=0.9.0-1 smartmontools=7.3-1+b1 smbclient=2:4.17.12+dfsg-0+deb12u4
socat=1.7.4.4-2 sox=14.4.2+git20190427-3.5 sqlite3=3.40.1-2+deb12u2
squid=5.7-2+deb12u5 sshfs=3.7.3-1.2~deb12u1 ssldump=1.5-1
strace=6.1-0.1 strongswan-starter=5.9.8-5+deb12u5 stunnel4=3:5.68-2+deb12u1
subversion=1.14.2-4+deb12u1 sudo=1.9.13p3-1+deb12u4 sysstat=12.6.1-1
systemd=252.39-1~deb12u2 sysvinit-utils=3.06-4 tar=1.34+dfsg-1.2+deb12u1
tcl=8.6.13 tcpdump=4.99.3-1 tesseract-ocr=5.3.0-2
texinfo=6.8-6+b1 texlive-binaries=2022.20220321.62855-5.1+deb12u2 tk=8.6.13
tmux=3.3a-3 tor=0.4.9.11-0+deb12u1 traceroute=1:2.1.2-1
tree=2.1.0-1 tshark=4.0.17-0+deb12u3 ufw=0.36.2-1
unbound=1.17.1-2+deb12u4 units=2.22-2 universal-ctags=5.9.20210829.0-1
unzip=6.0-28 usbutils=1:014-1+deb12u1 util-linux=2.38.1-5+deb12u3
util-linux-extra=2.38.1-5+deb12u3 uuid-runtime=2.38.1-5+deb12u3 varnish=7.1.1-2+deb12u1
vim-common=2:9.0.1378-2+deb12u2 vim-runtime=2:9.0.1378-2+deb12u2 vorbis-tools=1.4.2-1+b1
w3m=0.5.3+git20230121-2 wget=1.21.3-1+deb12u1 whiptail=0.52.23-1+b1
whois=5.5.17 wireguard-tools=1.0.20210914-1+b1 wireless-tools=30~pre9-14
wireshark-common=4.0.17-0+deb12u3 x11-utils=7.7+5 x11-xserver-utils=7.7+9+b1
xclip=0.13-2 xdg-utils=1.1.3-4.1 xdotool=1:3.20160805.1-5
xfsprogs=6.1.0-1 xmlstarlet=1.6.1-3 xsltproc=1.1.35-1+deb12u4
xz-utils=5.4.1-1+deb12u1 zip=3.0-13 zsh=5.9-4+b15
zstd=1.5.4+dfsg2-5
""".split()

NAMED = {"em": "—", "en": "–", "bu": "•", "hy": "-", "mi": "-", "aq": "'", "dq": '"', "lq": "“", "rq": "”",
         "oq": "‘", "cq": "’", "co": "©", "rg": "®", "tm": "™", "ti": "~", "ha": "^", "at": "@", "sh": "#",
         "Do": "$", "rs": "\\", "sl": "/", "bv": "|", "ba": "|", "br": "|", "ul": "_", "ru": "_", "pl": "+",
         "mu": "×", "di": "÷", "eq": "=", ">=": "≥", "<=": "≤", "ge": "≥", "le": "≤", "!=": "≠", "->": "→",
         "<-": "←", "ua": "↑", "da": "↓", "de": "°", "lB": "[", "rB": "]", "lC": "{", "rC": "}", "la": "⟨",
         "ra": "⟩", "Fo": "«", "Fc": "»", "fo": "‹", "fc": "›", "aa": "´", "ga": "`", "ss": "ß", "tf": "∴",
         "pc": "·", "ps": "¶", "sc": "§", "Po": "£", "Eu": "€", "oo": "°", "+-": "±", "12": "½", "14": "¼"}  # fmt: skip
STRINGS = {"C+": "C++", 'L"': "“", 'R"': "”", "C`": "‘", "C'": "’", "--": "—", "Aq": "'", "lq": "“", "rq": "”",
           "Tm": "™", "R": "®", "PI": "π", "Lq": "“", "Rq": "”"}  # fmt: skip
ESCAPE = re.compile(r"""\\(?:(?P<comment>["#].*)|f(?:\[[^\]]*\]|\(..|.)|\((?P<n2>..)|\[(?P<nb>[^\]]*)\]
    |\*(?:\[(?P<sb>[^\]]*)\]|\((?P<s2>..)|(?P<s1>.))|s(?:\[[^\]]*\]|[+-]?\(\d\d|[+-]?\d)
    |[hvwlLNoDbxXZSCAB]'[^']*'|[nkgmMFYV][+-]?(?:\[[^\]]*\]|\(..|.)|(?P<other>.)|$)""", re.X)  # fmt: skip
SIMPLE = {"-": "-", "e": "\\", "\\": "\\", " ": " ", "~": " ", "0": " ", "t": "\t", "'": "'", "`": "`", ".": "."}
MAN_PLAIN = {"B", "I", "SM", "SB"}  # arguments joined with spaces
MAN_ALTERNATING = {"BR", "BI", "IB", "IR", "RB", "RI"}  # arguments joined without spaces
FENCE_OPEN, FENCE_CLOSE = {"nf", "EX", "Vb", "Bd", "Dl"}, {"fi", "EE", "Ve", "Ed"}
PARAGRAPH = {"PP", "LP", "P", "Pp", "sp", "Sp", "TP", "HP", "IP", "It", "Bl", "El"}
MDOC_INLINE_DROP = {"Ar", "Cm", "Ic", "Pa", "Ev", "Va", "Dv", "Er", "Em", "Sy", "Li", "No", "Tn", "Ad", "An", "Fa",
                    "Fn", "Ft", "Cd", "Lb", "Ms", "Sx", "Vt", "Xo", "Xc", "Ql", "Lk", "Mt", "D1", "It", "Dl", "Nx",
                    "Ox", "Fx", "Bsx", "Dx", "St", "Ot", "Ic", "Fd", "In", "Ev", "Es", "En", "Rv", "Ex"}  # fmt: skip
MDOC_WORDS = {"Ux": "UNIX", "Bx": "BSD", "At": "AT&T UNIX", "Lx": "Linux"}
MDOC_OPEN = {"Op": "[", "Oo": "[", "Dq": "“", "Do": "“", "Qq": '"', "Qo": '"', "Sq": "‘", "So": "‘", "Pq": "(",
             "Po": "(", "Bq": "[", "Bo": "[", "Brq": "{", "Bro": "{", "Aq": "⟨", "Ao": "⟨", "Eo": ""}  # fmt: skip
MDOC_CLOSE = {"Oc": "]", "Dc": "”", "Qc": '"', "Sc": "’", "Pc": ")", "Bc": "]", "Brc": "}", "Ac": "⟩", "Ec": ""}
LINE_ENCLOSURE = {"Op": "]", "Dq": "”", "Qq": '"', "Sq": "’", "Pq": ")", "Bq": "]", "Brq": "}", "Aq": "⟩"}
PUNCT = re.compile(r"^[.,;:?!)\]]+$")
DASH = re.compile(r"\s+(?:\\?-{1,2}|—|–)\s+")


def unescape(text: str, strings: dict[str, str]) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group("comment") is not None:
            return ""
        if (name := m.group("n2") or m.group("nb")) is not None:
            if re.fullmatch(r"u[0-9A-Fa-f]{4,6}", name):
                return chr(int(name[1:], 16))
            return NAMED.get(name, "")
        if (name := m.group("sb") or m.group("s2") or m.group("s1")) is not None:
            return strings.get(name, "")
        return SIMPLE.get(m.group("other") or "", "")

    return ESCAPE.sub(one, text)


def split_args(args: str) -> list[str]:
    """A request's arguments: split on spaces, "double quotes" group ("" inside is a quote)."""
    out, word, quoted, i = [], "", False, 0
    while i < len(args):
        char = args[i]
        if char == '"' and quoted and args[i + 1 : i + 2] == '"':
            word, i = word + '"', i + 2
            continue
        if char == '"' and (quoted or not word):
            if quoted:
                out.append(word)
                word = ""
            quoted = not quoted
        elif char == " " and not quoted:
            if word:
                out.append(word)
            word = ""
        else:
            word += char
        i += 1
    return out + [word] if word else out


def mdoc_inline(tokens: list[str], name: str, strings: dict[str, str]) -> str:
    """One mdoc macro line (tokens after the first macro too) as text."""
    out: list[str] = []
    closers: list[str] = []
    glue = False  # no space before the next word
    flag = False  # the next word is a flag
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        i += 1
        word = None
        if tok == "Fl":
            flag = True
            if i >= len(tokens) or tokens[i] in MDOC_OPEN or tokens[i] in MDOC_INLINE_DROP or PUNCT.match(tokens[i]):
                word, flag = "-", False
        elif tok == "Nm":
            if i >= len(tokens) or PUNCT.match(tokens[i]) or tokens[i] in MDOC_OPEN or tokens[i] == "Ns":
                word = name
        elif tok == "Xr" and i + 1 < len(tokens):
            word, i = f"{tokens[i]}({tokens[i + 1]})", i + 2
        elif tok in ("Ns", "Pf", "Sm"):
            glue, i = True, i + (tok == "Sm")
            if tok == "Pf" and i < len(tokens):
                word = tokens[i]
                i += 1
        elif tok in MDOC_OPEN:
            out.append(("" if glue or not out else " ") + MDOC_OPEN[tok])
            glue = True
            if tok in LINE_ENCLOSURE:
                closers.append(LINE_ENCLOSURE[tok])
            continue
        elif tok in MDOC_CLOSE:
            word = MDOC_CLOSE[tok]
            glue = True
        elif tok in MDOC_WORDS:
            word = MDOC_WORDS[tok]
        elif tok in MDOC_INLINE_DROP or tok == "Nd":
            continue
        else:
            word = ("-" if flag else "") + unescape(tok, strings)
            flag = False
            glue = glue or bool(PUNCT.match(tok))
        if word is not None:
            out.append(word if glue or not out else " " + word)
            glue = False
    return ("".join(out) + "".join(reversed(closers))).strip()


def render(source: str) -> tuple[list[tuple[str, list[str]]], bool]:
    """(heading, lines) of each section of a man or mdoc page, and whether it is a `.so` redirect."""
    strings = dict(STRINGS)
    sections: list[tuple[str, list[str]]] = [("", [])]
    skip_block, cond_depth, fenced, table, heading_next, join_next = False, 0, False, 0, False, False
    name = ""
    lines = source.replace("\r", "").split("\n")
    if any(line.startswith(".so ") for line in lines[:5]) and sum(bool(x.strip()) for x in lines) <= 3:
        return [], True

    def emit(text: str) -> None:
        nonlocal join_next, heading_next
        body = sections[-1][1]
        if heading_next:
            sections.append((text.strip(), []))
            heading_next = False
        elif join_next and body:
            body[-1] += text
        else:
            body.append(text if fenced or not text.startswith("#") else "\\" + text)
        join_next = False

    for raw in lines:
        if skip_block:
            skip_block = not raw.strip().startswith("..")
            continue
        if cond_depth:
            cond_depth += raw.count("\\{") - raw.count("\\}")
            continue
        if table:  # tbl(1): skip the options and format lines, keep the data rows
            if raw.startswith(".TE"):
                table = 0
            elif table == 1:
                table = 2 if raw.rstrip().endswith(".") else 1
            elif raw.strip() not in ("_", "=", "T{", "T}") and not raw.startswith("."):
                emit(unescape(raw.replace("T{", "").replace("T}", ""), strings).replace("\t", "  "))
            continue
        if raw[:1] in (".", "'"):
            request = raw[1:].lstrip()
            macro, _, args = request.partition(" ")
            macro, args = macro.strip(), args.strip()
            if not macro or macro.startswith(('\\"', "\\#")):
                continue
            if macro in ("de", "de1", "am", "ig", "ds1"):
                skip_block = True
            elif macro in ("if", "ie", "el", "while"):
                cond_depth = max(0, raw.count("\\{") - raw.count("\\}"))
            elif macro == "ds":
                key, _, value = args.partition(" ")
                strings[key] = unescape(value.lstrip('"'), strings)
            elif macro in ("SH", "Sh", "SS", "Ss"):
                if fenced:
                    emit("```")
                    fenced = False
                title = unescape(" ".join(split_args(args)), strings).strip()
                level = "##" if macro in ("SH", "Sh") else "###"
                if title:
                    sections.append((f"{level} {title}", []))
                else:
                    heading_next = True
            elif macro in FENCE_OPEN and not fenced and (macro != "Bd" or "-literal" in args or "-unfilled" in args):
                if macro == "Dl":
                    emit("    " + mdoc_inline(split_args(args), name, strings))
                else:
                    emit("```")
                    fenced = True
            elif macro in FENCE_CLOSE and fenced:
                emit("```")
                fenced = False
            elif macro == "TS":
                table = 1
            elif macro in PARAGRAPH:
                if not fenced:
                    emit("")
                if (
                    macro == "IP"
                    and args
                    and (tag := unescape(split_args(args)[0], strings)) not in ("", "•", "-", "*")
                ):
                    emit(tag)
                elif macro == "It" and args:
                    emit(mdoc_inline(split_args(args), name, strings))
            elif macro in MAN_PLAIN or macro in MAN_ALTERNATING:
                parts = [unescape(a, strings) for a in split_args(args)]
                if parts:
                    emit((" " if macro in MAN_PLAIN else "").join(parts))
            elif macro in ("OP", "SY"):
                text = " ".join(unescape(a, strings) for a in split_args(args))
                emit(f"[{text}]" if macro == "OP" else text)
            elif macro == "Nm" and args and not name:
                name = split_args(args)[0]
                emit(mdoc_inline(["Nm", *split_args(args)], name, strings))
            elif macro == "Nd":
                emit("- " + mdoc_inline(split_args(args), name, strings))
            elif macro[:1].isupper() and macro[1:2].islower() or macro in MDOC_OPEN or macro in MDOC_CLOSE:
                text = mdoc_inline([macro, *split_args(args)], name, strings)
                if text:
                    emit(text)
            continue
        text = unescape(raw, strings)
        ends_joined = bool(re.search(r"(?<!\\)\\c\s*$", raw))
        emit(text.rstrip() if not fenced else text.rstrip())
        join_next = ends_joined
    if fenced:
        emit("```")
    return sections, False


def description(lines: list[str]) -> str:
    """The description part of a NAME section: after the dash of its first `names - description` line."""
    text = []
    for line in (x.strip() for x in lines):
        if not line:
            continue
        match = DASH.search(" " + line if line.startswith(("-", "—", "–")) else line)
        if match and text:
            break
        if match:
            text.append((" " + line if line.startswith(("-", "—", "–")) else line)[match.end() :])
        elif text:
            text.append(line)
    return re.sub(r"\s+", " ", " ".join(text)).strip()


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().rstrip(".").strip().lower()


def download(debs: Path) -> list[Path]:
    """The pinned .deb files, downloaded into `debs` when missing."""
    debs.mkdir(parents=True, exist_ok=True)
    found = {}
    for spec in PINNED:
        name, version = spec.split("=", 1)
        for path in sorted(debs.glob(f"{name}_*.deb")):
            if path.name.split("_")[0] == name and deb_field(path, "Version") == version:
                found[spec] = path
    missing = [spec for spec in PINNED if spec not in found]
    if missing:
        print(f"apt-get download: {len(missing)} packages into {debs}", file=sys.stderr)
        done = subprocess.run(["apt-get", "download", *missing], cwd=debs, stdout=subprocess.DEVNULL)
        if done.returncode:
            sys.exit("error: apt-get download failed (a pinned version may have left the apt sources; see above)")
        return download(debs)
    return [found[spec] for spec in PINNED]


def deb_field(path: Path, field: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", str(path), field], capture_output=True, text=True, check=True
    ).stdout.strip()


def man_pages(deb: Path) -> list[tuple[str, str, bytes]]:
    """(command, section, troff source) of the English man1/man8 pages that are regular files."""
    tar_bytes = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
    pages = []
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as archive:
        for member in archive.getmembers():
            match = re.fullmatch(r"\./usr/share/man/man[18]/(.+)\.(\d\w*)(\.gz)?", member.name)
            if not match or not member.isfile():
                continue
            data = archive.extractfile(member).read()  # type: ignore[union-attr]
            pages.append((match.group(1), match.group(2), gzip.decompress(data) if match.group(3) else data))
    return sorted(pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("~/.cache/m2vsearch/docs-dev").expanduser())
    parser.add_argument("--debs", type=Path, default=Path("~/.cache/m2vsearch/docs-dev-debs").expanduser())
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    train_file = args.data / "train" / "manpages" / "pairs.jsonl"
    if not train_file.is_file():
        sys.exit(f"error: no training pairs at {train_file} (pass --data)")
    train = {normalize(json.loads(line)["query"]) for line in train_file.open(encoding="utf-8") if line.strip()}
    corpus = args.out / "corpus"
    if corpus.exists():
        shutil.rmtree(corpus)
    corpus.mkdir(parents=True)
    packages, pages, seen_names, seen_sources = [], [], set(), set()
    for deb in download(args.debs):
        package = {"name": deb_field(deb, "Package"), "version": deb_field(deb, "Version"), "file": deb.name,
                   "sha256": hashlib.sha256(deb.read_bytes()).hexdigest(), "pages": 0}  # fmt: skip
        packages.append(package)
        for command, section, raw in man_pages(deb):
            file = re.sub(r"[^A-Za-z0-9._+-]", "_", f"{command}.{section}") + ".md"
            digest = hashlib.sha256(raw).hexdigest()
            if file in seen_names or digest in seen_sources:
                continue
            seen_sources.add(digest)
            sections, redirect = render(raw.decode("utf-8", errors="replace"))
            names = [lines for heading, lines in sections if heading.upper() in ("## NAME", "## NAME:")]
            if redirect or not names:
                continue
            body = "\n\n".join("\n".join([h, *lines]).strip() for h, lines in sections[1:] if h.upper() != "## NAME")
            body = re.sub(r"\n{3,}", "\n\n", body).strip()
            if not MIN_DOC_CHARS <= len(body) <= MAX_DOC_CHARS:
                continue
            seen_names.add(file)
            (corpus / file).write_text(f"# {command}\n\n{body}\n", encoding="utf-8")
            package["pages"] += 1
            text = description(names[0])
            verbatim = bool(text) and normalize(text) in normalize(body)
            pages.append(
                {"file": f"corpus/{file}", "package": package["name"], "description": text, "verbatim": verbatim}
            )
    counts = Counter(normalize(p["description"]) for p in pages)
    for page in pages:
        text = page["description"]
        if len(text.split()) < MIN_WORDS or STUB.match(text):
            page["no_query"] = "short_or_stub"
        elif counts[normalize(text)] > 1:
            page["no_query"] = "duplicate"
        elif normalize(text) in train:
            page["no_query"] = "in_training_pairs"
    rng = random.Random(SEED)
    by_package: dict[str, list[dict]] = {}
    for page in pages:
        if "no_query" not in page:
            by_package.setdefault(page["package"], []).append(page)
    for group in by_package.values():
        if len(group) > MAX_QUERIES_PER_PACKAGE:
            keep = {id(p) for p in rng.sample(group, MAX_QUERIES_PER_PACKAGE)}
            for page in group:
                if id(page) not in keep:
                    page["no_query"] = "package_cap"
    queried = [p for p in pages if "no_query" not in p]
    ids = [Path(p["file"]).stem for p in queried]
    dev = set(rng.sample(ids, len(ids) // 2))
    with (args.out / "queries.jsonl").open("w", encoding="utf-8") as handle:
        for qid, page in zip(ids, queried):
            handle.write(json.dumps({"_id": qid, "text": page["description"]}, ensure_ascii=False) + "\n")
    for suffix, keep in (("", set(ids)), ("-dev", dev), ("-heldout", set(ids) - dev)):
        rows = [f"{q}\t{p['file']}\t1\n" for q, p in zip(ids, queried) if q in keep]
        (args.out / f"qrels{suffix}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(rows), encoding="utf-8")
    with (args.out / "pages.jsonl").open("w", encoding="utf-8") as handle:
        for page in pages:
            handle.write(json.dumps(page, ensure_ascii=False) + "\n")
    size = sum(f.stat().st_size for f in corpus.iterdir())
    reasons = Counter(p.get("no_query", "query") for p in pages)
    manifest = {"source": "Debian bookworm main, apt-get download NAME=VERSION", "seed": SEED,
                "min_words": MIN_WORDS, "min_doc_chars": MIN_DOC_CHARS,
                "max_doc_chars": MAX_DOC_CHARS, "max_queries_per_package": MAX_QUERIES_PER_PACKAGE,
                "pages": len(pages), "corpus_bytes": size, "queries": len(ids), "dev": len(dev),
                "heldout": len(ids) - len(dev), "queries_verbatim_in_page": sum(p["verbatim"] for p in queried), "pages_by_reason": dict(sorted(reasons.items())), "packages": packages}  # fmt: skip
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"{len(pages)} pages ({size / 1e6:.1f} MB) from {len(packages)} packages; {len(ids)} queries "
          f"({len(dev)} dev, {len(ids) - len(dev)} heldout); without a query: {dict(reasons)}")  # fmt: skip


if __name__ == "__main__":
    main()
