"""One converter per data source in ../shared/data, each yielding canonical :class:`Record` objects.

The readers that open archives are thin; the converters take rows/text so tests can feed them small
fixtures cut from the real formats.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
import tarfile
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from .records import (
    AMBIGUOUS,
    BROAD,
    CLEAN,
    OTHER,
    UNKNOWN,
    DropLog,
    Record,
    Span,
    check_span,
    detokenize,
    is_omission,
    map_category,
    map_severity,
    segment_label,
    spans_from_tags,
)

csv.field_size_limit(10**8)

MQM_HEADER = ["system", "doc", "doc_id", "seg_id", "rater", "source", "target", "category", "severity"]
_REPEAT = re.compile(r"(.{8,})\1", re.S)


class MissingSourceError(FileNotFoundError):
    """A source folder or file the builder needs is absent."""


def require(path: Path, what: str) -> Path:
    if not path.exists():
        raise MissingSourceError(f"missing {path}: expected {what} (see ../shared/data/README.md)")
    return path


# ---------------------------------------------------------------------------------------------
# Overlap with held-out test sets
# ---------------------------------------------------------------------------------------------


def read_overlap(path: Path) -> set[tuple[str, ...]]:
    """Keys of rows listed in heldout_overlap.tsv, in the form each converter checks."""
    keys: set[tuple[str, ...]] = set()
    with open(path, encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            folder, file, loc = row["folder"], row["file"], row["locator"]
            if folder == "wmt21-zhen-mqm":
                m = re.match(r"doc=(\S+) seg_id=(\d+)", loc)
                if m:
                    keys.add(("wmt21_news", m.group(1), m.group(2)))
            elif folder == "bio-mqm":
                pair = re.search(r"round_two/(\w+)/", file)
                m = re.match(r"DOC_ID=(\S+) SEG_ID=(\S+)", loc)
                if pair and m:
                    keys.add(("bio", pair.group(1), m.group(1), m.group(2)))
            elif folder == "mlqe-pe":
                m = re.search(r"line (\d+)", loc)
                if m:
                    keys.add(("mlqe", file.split()[0], m.group(1)))
            elif folder == "clean-english" and "ref.A" in file:
                m = re.search(r"line (\d+)", loc)
                if m:
                    keys.add(("ref_a", m.group(1)))
    return keys


# ---------------------------------------------------------------------------------------------
# Google-style MQM TSV (WMT20, WMT21 news, WMT21 TED)
# ---------------------------------------------------------------------------------------------


def strip_markers(target: str) -> str:
    return target.replace("<v>", "").replace("</v>", "")


def choose_target(versions: Counter[str]) -> str:
    """Rebuild one target per system x segment: the most frequent version without a duplicated run."""
    return sorted(versions.items(), key=lambda kv: (bool(_REPEAT.search(kv[0])), -kv[1], len(kv[0]), kv[0]))[0][0]


def _map_pos(opcodes: Sequence[tuple[str, int, int, int, int]], p: int, end: bool) -> int:
    for tag, i1, i2, j1, j2 in opcodes:
        if i1 <= p < i2 or (end and p == i2 and tag == "equal"):
            if tag == "equal":
                return j1 + (p - i1)
            return j2 if end else j1
    return opcodes[-1][4] if opcodes else 0


def locate_span(own: str, s: int, e: int, rebuilt: str) -> tuple[int, int, str] | None:
    """Place own[s:e] in the rebuilt target, using the rater's own position, not only string search.

    Returns (start, end, method) or None when the annotated text cannot be placed.
    """
    text = own[s:e]
    if own == rebuilt:
        return s, e, "exact"
    sm = difflib.SequenceMatcher(None, own, rebuilt, autojunk=False)
    ops = sm.get_opcodes()
    est = _map_pos(ops, s, end=False)
    occ = [m.start() for m in re.finditer(re.escape(text), rebuilt)]
    if occ:
        best = min(occ, key=lambda o: (abs(o - est), o))
        return best, best + len(text), "search"
    return None


def convert_mqm_rows(
    rows: Iterable[list[str]], source: str, drops: DropLog, source_side_omissions: bool
) -> list[Record]:
    """Convert MQM TSV rows (header excluded) into one merged record per system x segment."""
    groups: dict[tuple[str, str], list[list[str]]] = defaultdict(list)
    order: list[tuple[str, str]] = []
    for row in rows:
        if len(row) != 9:
            drops.drop(source, f"malformed row (expected 9 columns, got {len(row)})")
            continue
        key = (row[0], row[3])
        if key not in groups:
            order.append(key)
        groups[key].append(row)
    records: list[Record] = []
    for key in order:
        grp = groups[key]
        system, doc, seg_id = grp[0][0], grp[0][1], grp[0][3]
        versions = Counter(strip_markers(r[6]) for r in grp)
        rebuilt = choose_target(versions)
        spans: list[Span] = []
        any_error = False
        raters = {r[4] for r in grp}
        seen: set[tuple[int, int, str, str]] = set()
        for r in grp:
            category, severity, target, rater = r[7], r[8], r[6], r[4]
            cls = map_category(category)
            if cls is None:
                if "source" in category.lower():
                    drops.drop(source, "source-error row (describes the source)")
                continue
            any_error = True
            sev = map_severity(severity)
            if source_side_omissions and is_omission(category):
                drops.drop(source, "omission marked in the source (no target span)")
                continue
            if "<v>" not in target:
                if "non" in category.lower() and "translation" in category.lower():
                    s, e, own = 0, len(strip_markers(target)), strip_markers(target)
                else:
                    drops.drop(source, f"{sev} span without <v> marker")
                    continue
            else:
                s = target.index("<v>")
                close = target.find("</v>", s)
                own = strip_markers(target)
                if close < 0:
                    e = len(own)  # WMT21 non-translation: no closing marker
                else:
                    e = close - 3
                    if target.count("<v>") > 1 and target.index("<v>", s + 3) < close:
                        drops.drop(source, f"{sev} span with nested or repeated <v> markers")
                        continue
            while s < e and own[s].isspace():
                s += 1
            while e > s and own[e - 1].isspace():
                e -= 1
            if s >= e:
                drops.drop(source, f"{sev} empty span")
                continue
            placed = locate_span(own, s, e, rebuilt)
            if placed is None:
                if is_omission(category):
                    # WMT20 raters typed the omitted content into the target: it is not MT output.
                    drops.drop(source, f"{sev} omission text typed in by the rater (not in the MT output)")
                else:
                    drops.drop(source, f"{sev} span text not in the rebuilt target")
                continue
            ps, pe, method = placed
            drops.keep(source, f"{sev} span located ({method})")
            span = Span(ps, pe, sev, cls, raw_category=category, rater=rater)
            check_span(rebuilt, span, own[s:e])
            k = (ps, pe, cls, sev)
            if k in seen:
                continue
            seen.add(k)
            spans.append(span)
        spans.sort(key=lambda sp: (sp.start, sp.end))
        label = segment_label(spans, any_error)
        seg = int(seg_id) if seg_id.isdigit() else 0
        records.append(
            Record(
                id=f"{source}:{doc}:{seg_id}:{system}",
                source=source,
                doc_id=f"{source}:{doc}",
                text=rebuilt,
                spans=spans,
                label=label,
                seg=seg,
                system=system,
                n_raters=len(raters),
                meta={"versions": len(versions)} if len(versions) > 1 else {},
            )
        )
    return records


def read_tsv_rows(text: str) -> tuple[list[str], list[list[str]]]:
    reader = csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader)
    return header, list(reader)


def _tar_member(path: Path, suffix: str) -> str:
    with tarfile.open(path) as tar:
        for m in tar.getmembers():
            name = m.name.rsplit("/", 1)[-1]
            if name.endswith(suffix) and not name.startswith("._"):
                f = tar.extractfile(m)
                assert f is not None
                return f.read().decode("utf-8")
    raise MissingSourceError(f"{path} has no member ending in {suffix}")


def load_wmt20(root: Path, drops: DropLog) -> list[Record]:
    path = require(root / "wmt20-zhen-mqm" / "zh-en-train-2020.tar.gz", "the WMT20 zh-en MQM tarball")
    header, rows = read_tsv_rows(_tar_member(path, "mqm_newstest2020_zhen.tsv"))
    return convert_mqm_rows(rows, "wmt20_news", drops, source_side_omissions=False)


def load_wmt21_news(root: Path, drops: DropLog, overlap: set[tuple[str, ...]]) -> list[Record]:
    path = require(root / "wmt21-zhen-mqm" / "zh-en-train-2021-news.tar.gz", "the WMT21 news zh-en MQM tarball")
    header, rows = read_tsv_rows(_tar_member(path, "mqm-newstest2021_zhen.tsv"))
    kept = []
    for r in rows:
        if len(r) == 9 and ("wmt21_news", r[1], r[3]) in overlap:
            drops.drop("wmt21_news", "held-out overlap (DEMETR) row")
            continue
        kept.append(r)
    return convert_mqm_rows(kept, "wmt21_news", drops, source_side_omissions=True)


def load_wmt21_ted(root: Path, drops: DropLog) -> list[Record]:
    path = require(root / "wmt21-zhen-mqm" / "google-ted-zhen" / "mqm_ted_zhen.tsv", "Google's TED zh-en MQM TSV")
    header, rows = read_tsv_rows(path.read_text(encoding="utf-8"))
    return convert_mqm_rows(rows, "wmt21_ted", drops, source_side_omissions=True)


# ---------------------------------------------------------------------------------------------
# WMT22 QE zh-en dev (tokenised MT + word tags + MQM score)
# ---------------------------------------------------------------------------------------------


def convert_tagged(
    mt_lines: list[str],
    tag_lines: list[str],
    source: str,
    drops: DropLog,
    interleaved_gaps: bool,
    eos: bool,
) -> list[tuple[int, str, list[Span]] | None]:
    """Detokenise MT lines and turn BAD word tags into character spans. None marks a malformed line."""
    out: list[tuple[int, str, list[Span]] | None] = []
    for i, (mt, tags) in enumerate(zip(mt_lines, tag_lines)):
        toks = mt.split()
        tg = tags.split()
        if eos and toks and toks[-1] == "<EOS>":
            toks = toks[:-1]
            tg = tg[:-1]
        if interleaved_gaps:
            if len(tg) != 2 * len(toks) + 1:
                drops.drop(source, "tag count does not match tokens")
                out.append(None)
                continue
            tg = tg[1::2]
        if len(tg) != len(toks):
            drops.drop(source, "tag count does not match tokens")
            out.append(None)
            continue
        text, offsets = detokenize(toks)
        spans = spans_from_tags(offsets, [t == "BAD" for t in tg], UNKNOWN, OTHER)
        for sp in spans:
            check_span(text, sp, None)
        out.append((i, text, spans))
    return out


def load_wmt22_dev(root: Path, drops: DropLog) -> list[Record]:
    zpath = require(root / "wmt22-qe-zhen-dev" / "zh-en-dev-2022.zip", "the WMT22 QE zh-en dev zip")
    cpath = require(root / "wmt22-qe-zhen-dev" / "zh-en-mqm.2022_dev.csv", "the WMT22 QE zh-en dev MQM csv")
    with zipfile.ZipFile(zpath) as z:
        mt = z.read("mqm_dev2022_zhen.mt").decode("utf-8").splitlines()
        tags = z.read("mqm_dev2022_zhen.tags").decode("utf-8").splitlines()
        src = z.read("mqm_dev2022_zhen.src").decode("utf-8").splitlines()
    with open(cpath, encoding="utf-8") as f:
        scores = [float(r["score"]) for r in csv.DictReader(f)]
    if len(scores) != len(mt):
        drops.drop("wmt22_dev", "score csv and mt file differ in length")
    records = []
    for item in convert_tagged(mt, tags, "wmt22_dev", drops, interleaved_gaps=False, eos=True):
        if item is None:
            continue
        i, text, spans = item
        score = scores[i] if i < len(scores) else None
        if spans:
            label = BROAD
        elif score == 100:
            label = CLEAN
        else:
            label = AMBIGUOUS
        # Documents are unknown; each distinct source sentence is its own document.
        records.append(
            Record(
                id=f"wmt22_dev:{i + 1}",
                source="wmt22_dev",
                doc_id=f"wmt22_dev:{src[i] if i < len(src) else i}",
                text=text,
                spans=spans,
                label=label,
                seg=0,
                meta={"mqm_score": score} if score is not None else {},
            )
        )
    return records


# ---------------------------------------------------------------------------------------------
# MLQE-PE post-edits (ro, et, ne, si, ru -> en)
# ---------------------------------------------------------------------------------------------

MLQE_PAIRS = ("ro-en", "et-en", "ne-en", "si-en", "ru-en")
MLQE_BROAD_HTER = 0.4  # post-edit rate above which a segment counts as a broad positive


def load_mlqe(root: Path, drops: DropLog, overlap: set[tuple[str, ...]]) -> list[Record]:
    base = require(root / "mlqe-pe" / "post-editing", "MLQE-PE post-editing archives")
    records = []
    for split in ("train", "dev"):
        for pair in MLQE_PAIRS:
            path = base / split / f"{pair}-{split}.tar.gz"
            if not path.exists():
                drops.drop("mlqe_pe", f"missing archive {path.name}")
                continue
            mt = _tar_member(path, f"{split}.mt").splitlines()
            tags = _tar_member(path, f"{split}.tags").splitlines()
            hter = [float(x) for x in _tar_member(path, f"{split}.hter").split()]
            # the human post-edit of each output (same article, meaning restored): kept in meta for the sense
            # head's genre-matched negatives and MT-vs-post-edit pairs, never as a record of its own
            pe = [detokenize(line.split())[0] for line in _tar_member(path, f"{split}.pe").splitlines()]
            if len(pe) != len(mt):
                raise MissingSourceError(f"{path}: {len(pe)} post-edits for {len(mt)} MT lines")
            da = _mlqe_da(root, pair, split, len(mt))
            name = f"{pair}-{split}"
            for item in convert_tagged(mt, tags, "mlqe_pe", drops, interleaved_gaps=True, eos=False):
                if item is None:
                    continue
                i, text, spans = item
                if ("mlqe", name, str(i + 1)) in overlap:
                    drops.drop("mlqe_pe", "held-out overlap row")
                    continue
                h = hter[i]
                label = CLEAN if h == 0 and not spans else (BROAD if h >= MLQE_BROAD_HTER else AMBIGUOUS)
                records.append(
                    Record(
                        id=f"mlqe_pe:{name}:{i + 1}",
                        source="mlqe_pe",
                        # official splits share Wikipedia articles; no document ids per line, so each
                        # line is its own document and the whole source stays in one split.
                        doc_id=f"mlqe_pe:{pair}:{i}:{split}",
                        text=text,
                        spans=spans,
                        label=label,
                        meta={"hter": h, "pair": pair, "official_split": split, "pe": pe[i], **da[i]},
                    )
                )
    return records


def _mlqe_da(root: Path, pair: str, split: str, n: int) -> list[dict]:
    """Per MT line: the mean DA score (0-100, "does it make sense"), its z-normalised mean and the Wikipedia
    article (``doc_ids``; the official splits share articles). Empty dicts when the DA archive is missing."""
    path = root / "mlqe-pe" / "direct-assessments" / split / f"{pair}-{split}.tar.gz"
    if not path.exists():
        return [{} for _ in range(n)]
    short = pair.replace("-", "")
    _, rows = read_tsv_rows(_tar_member(path, f"{split}.{short}.df.short.tsv"))
    docs = _tar_member(path, f"{split}.doc_ids").splitlines()[1:]
    if len(rows) != n or len(docs) != n:
        raise MissingSourceError(f"{path}: {len(rows)} DA rows and {len(docs)} doc ids for {n} MT lines")
    return [{"da": float(r[4]), "da_z": float(r[6]), "article": d.strip()} for r, d in zip(rows, docs)]


# ---------------------------------------------------------------------------------------------
# Bio-MQM (biomedical, 6 pairs into English, dev documents)
# ---------------------------------------------------------------------------------------------


def convert_bio_records(items: list[dict], pair: str, drops: DropLog, overlap: set[tuple[str, ...]]) -> list[Record]:
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    order = []
    for it in items:
        key = (str(it.get("DOC_ID")), str(it.get("SEG_ID")), str(it.get("MT_Engine")))
        if key not in groups:
            order.append(key)
        groups[key].append(it)
    records = []
    for key in order:
        doc, seg, engine = key
        if ("bio", pair, doc, seg) in overlap:
            drops.drop("bio_mqm", "held-out overlap row", len(groups[key]))
            continue
        grp = groups[key]
        target = grp[0]["target"]
        spans: list[Span] = []
        any_error = False
        seen = set()
        for it in grp:
            if it["target"] != target:
                drops.drop("bio_mqm", "second annotator saw a different target")
                continue
            for err in it.get("target_errors", []):
                cls = map_category(f"{err['error_category']}/{err['error_subcategory']}")
                if cls is None:
                    continue
                any_error = True
                sev = map_severity(err["severity"])
                term, s, e = err["term"], int(err["startIndex"]), int(err["endIndex"])
                if target[s : e + 1] == term:
                    e = e + 1
                elif target[s:e] == term:
                    pass
                else:
                    occ = [m.start() for m in re.finditer(re.escape(term), target)] if term else []
                    if not occ:
                        drops.drop("bio_mqm", f"{sev} span term not in the record's target")
                        continue
                    s = min(occ, key=lambda o: abs(o - s))
                    e = s + len(term)
                while s < e and target[s].isspace():
                    s += 1
                while e > s and target[e - 1].isspace():
                    e -= 1
                if s >= e:
                    drops.drop("bio_mqm", f"{sev} empty span")
                    continue
                sp = Span(s, e, sev, cls, raw_category=f"{err['error_category']}/{err['error_subcategory']}",
                          rater=str(it.get("Annotator_ID", "")).strip())
                check_span(target, sp, term.strip())
                k = (s, e, cls, sev)
                if k not in seen:
                    seen.add(k)
                    spans.append(sp)
        spans.sort(key=lambda sp: (sp.start, sp.end))
        raters = {str(it.get("Annotator_ID", "")).replace("\xa0", "").strip() for it in grp}
        records.append(
            Record(
                id=f"bio_mqm:{pair}:{doc}:{seg}:{engine}",
                source="bio_mqm",
                doc_id=f"bio_mqm:{pair}:{doc}",
                text=target,
                spans=spans,
                label=segment_label(spans, any_error),
                seg=int(seg) if seg.isdigit() else 0,
                system=engine,
                n_raters=len(raters),
            )
        )
    return records


def load_bio(root: Path, drops: DropLog, overlap: set[tuple[str, ...]]) -> list[Record]:
    base = require(root / "bio-mqm" / "round_two", "Bio-MQM round_two/<pair>/*.json files")
    records = []
    for pair_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        items: list[dict] = []
        for f in sorted(pair_dir.glob("*.json")):
            try:
                items.extend(json.loads(f.read_text(encoding="utf-8")))
            except json.JSONDecodeError:
                drops.drop("bio_mqm", f"malformed JSON file {f.name}")
        records.extend(convert_bio_records(items, pair_dir.name, drops, overlap))
    return records


# ---------------------------------------------------------------------------------------------
# Clean human English
# ---------------------------------------------------------------------------------------------


def _clean(rid: str, source: str, doc: str, seg: int, text: str) -> Record:
    return Record(id=rid, source=source, doc_id=f"{source}:{doc}", text=text, label=CLEAN, seg=seg)


def load_gum(root: Path, drops: DropLog) -> list[Record]:
    path = require(root / "clean-english" / "gum" / "gum_ccby_docs.jsonl", "GUM documents as JSON lines")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            drops.drop("gum", f"malformed JSON line {n + 1}")
            continue
        for i, s in enumerate(d["sentences"]):
            if s.strip():
                out.append(_clean(f"gum:{d['doc']}:{i}", "gum", d["doc"], i, s.strip()))
    return out


_BROWN_QUOTES = {"``": "\u201c", "''": "\u201d"}


def brown_sentence(tagged: str) -> str:
    toks = []
    for tt in tagged.split():
        w = tt.rsplit("/", 1)[0]
        toks.append(_BROWN_QUOTES.get(w, w))
    text, _ = detokenize(toks)
    text = re.sub(r"\u201c ", "\u201c", text)
    text = re.sub(r" \u201d", "\u201d", text)
    return text


def load_nltk(root: Path, drops: DropLog) -> list[Record]:
    base = require(root / "clean-english" / "nltk", "brown.zip, abc.zip and state_union.zip from nltk_data")
    out: list[Record] = []
    with zipfile.ZipFile(require(base / "brown.zip", "the Brown corpus zip")) as z:
        for name in sorted(z.namelist()):
            fid = name.rsplit("/", 1)[-1]
            if not re.fullmatch(r"c[a-r]\d\d", fid):
                continue
            seg = 0
            for line in z.read(name).decode("utf-8").splitlines():
                if line.strip():
                    out.append(_clean(f"brown:{fid}:{seg}", "brown", fid, seg, brown_sentence(line)))
                    seg += 1
    with zipfile.ZipFile(require(base / "abc.zip", "the ABC corpus zip")) as z:
        for part in ("rural", "science"):
            lines = [ln.strip() for ln in z.read(f"abc/{part}.txt").decode("latin-1").splitlines() if ln.strip()]
            for i, ln in enumerate(lines):
                doc = f"{part}-{i // 20}"  # no article boundaries in the file: blocks of 20 lines
                out.append(_clean(f"abc:{part}:{i}", "abc", doc, i % 20, ln))
    with zipfile.ZipFile(require(base / "state_union.zip", "the State of the Union zip")) as z:
        for name in sorted(z.namelist()):
            if not name.endswith(".txt"):
                continue
            fid = name.rsplit("/", 1)[-1][:-4]
            try:
                raw = z.read(name).decode("utf-8")
            except UnicodeDecodeError:
                raw = z.read(name).decode("latin-1")
            paras = [p.strip() for p in raw.splitlines() if p.strip()]
            for i, p in enumerate(paras):
                out.append(_clean(f"sotu:{fid}:{i}", "sotu", fid, i, p))
    return out


def load_newstest_en(root: Path, drops: DropLog, overlap: set[tuple[str, ...]]) -> list[Record]:
    base = require(root / "clean-english" / "wmt21-news", "newstest2021 English files")
    out = []
    src = (base / "newstest2021.en-de.src.en").read_text(encoding="utf-8").splitlines()
    for i, ln in enumerate(src):
        if ln.strip():
            out.append(_clean(f"newstest_en:{i + 1}", "newstest_en", f"block{i // 20}", i % 20, ln.strip()))
    ref = (base / "newstest2021.zh-en.ref.A.en").read_text(encoding="utf-8").splitlines()
    for i, ln in enumerate(ref):
        if ("ref_a", str(i + 1)) in overlap:
            drops.drop("wmt21_ref_a", "held-out overlap (DEMETR) line")
            continue
        if ln.strip():
            out.append(_clean(f"wmt21_ref_a:{i + 1}", "wmt21_ref_a", f"block{i // 20}", i % 20, ln.strip()))
    return out


def iter_sources(root: Path, drops: DropLog) -> Iterator[tuple[str, list[Record]]]:
    overlap = read_overlap(require(root / "heldout_overlap.tsv", "the held-out overlap list"))
    yield "wmt20_news", load_wmt20(root, drops)
    yield "wmt21_news", load_wmt21_news(root, drops, overlap)
    yield "wmt21_ted", load_wmt21_ted(root, drops)
    yield "wmt22_dev", load_wmt22_dev(root, drops)
    yield "bio_mqm", load_bio(root, drops, overlap)
    yield "mlqe_pe", load_mlqe(root, drops, overlap)
    yield "gum", load_gum(root, drops)
    yield "nltk", load_nltk(root, drops)
    yield "newstest_en", load_newstest_en(root, drops, overlap)
