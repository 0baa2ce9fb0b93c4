"""Hard negative captions (NegCLIP) and the contrastive loss that uses them."""
import numpy as np
import pytest
import torch

from t2i.data.dataset import ImageCaptionSet
from t2i.errors import InputError
from t2i.models.clip import CLIP, CLIPConfig
from t2i.text.negatives import hard_negatives, negative_kinds, rephrased_negatives
from t2i.train.captions import CaptionTable


def test_hard_negatives_change_the_meaning_not_the_words():
    assert hard_negatives("a circle above a square") == ["a circle below a square"]
    assert hard_negatives("a circle to the left of a square") == ["a circle to the right of a square"]
    assert hard_negatives("a square beneath a circle") == ["a square on top of a circle"]
    assert hard_negatives("a red circle and a blue square") == ["a blue circle and a red square"]
    assert hard_negatives("two squares") == ["three squares", "a square"]
    # counts said as numerals ("1" reads as "a", as "one" does)
    assert [hard_negatives(c, ("count",)) for c in ("3 circles", "squares x3", "4x circles.", "1 circle")] == [
        ["4 circles"], ["squares x4"], ["5x circles."], []]
    assert hard_negatives("a large red circle to the left of a small blue square") == [
        "a large red circle to the right of a small blue square",
        "a large blue circle to the left of a small red square",
        "a small red circle to the left of a large blue square"]
    # swaps that only reorder the objects, relations between identical objects, nothing to perturb
    assert hard_negatives("a green circle and a blue circle") == []
    assert hard_negatives("a circle to the left of a circle") == []
    assert hard_negatives("grinning face with big eyes") == []
    # "to the left of" is one relation, not "left of" inside it
    assert "to the right of" in hard_negatives("a circle to the left of a square")[0]


def test_one_object_becomes_two_and_two_become_one():
    # the matching head had read "exactly one square" as a fit for a picture of two squares
    one = lambda c: hard_negatives(c, ("one",))  # noqa: E731
    assert one("a circle") == ["two circles"]
    assert one("Make a picture containing exactly one square.") == ["Make a picture containing exactly two squares."]
    assert one("a single round disc") == ["two round discs"]  # "a single" is the count; modifiers may stand between
    assert one("An emerald triangle") == ["Two emerald triangles"]
    assert one("A TRIANGLE ON WHITE") == ["TWO TRIANGLES ON WHITE"]
    assert one("two squares") == ["a square"] and one("Two emerald discs.") == ["An emerald disc."]  # a caption of one
    assert one("draw two squares") == ["draw one square"] and one("2 red discs") == ["1 red disc"]
    assert one("two circles and a square") == [] and one("a circle above a square") == []  # one kind of object only
    assert one("a big three-sided shape") == ["two big three-sided shapes"]
    # no count next to the noun, a count other than one or two, a noun outside the shapes world
    assert [one(c) for c in ("circle only", "a picture of circle", "three circles", "a pair of circles", "a dog")] == [[]] * 5
    assert hard_negatives("a circle") == ["two circles"] and hard_negatives("two squares") == ["three squares", "a square"]


def test_a_swap_knows_a_colour_or_size_said_in_other_words():
    # the lexicon's words (t2i.text.synonyms) are the colour or size they name, two-word ones too
    assert hard_negatives("a scarlet disc and a blue square") == ["a blue disc and a scarlet square"]
    assert hard_negatives("the royal blue disk is left of a bright red square.", ("colour",)) == ["the bright red disk is left of a royal blue square."]
    assert hard_negatives("a cobalt-blue circle, a lemon-yellow square", ("colour",)) == ["a lemon-yellow circle, a cobalt-blue square"]
    # the same colour or size in two words is no swap: the meaning would not change
    assert hard_negatives("a scarlet disc and a red square") == []
    assert hard_negatives("a big circle and a large square") == hard_negatives("a gray circle and a grey square") == []
    assert hard_negatives("a tiny circle and a huge disc", ("size",)) == ["a huge circle and a tiny disc"]
    # a colour word at the end of a sentence is still a colour; articles agree with their new word
    assert hard_negatives("a square in green and a circle in red.", ("colour",)) == ["a square in red and a circle in green."]
    assert hard_negatives("an emerald disc and a red square") == ["a red disc and an emerald square"]


def test_a_relation_flip_mirrors_every_direction_word_however_the_caption_is_worded():
    flip = lambda caption: hard_negatives(caption, ("relation",))  # noqa: E731
    assert flip("left: a circle, right: a square") == ["right: a circle, left: a square"]
    assert flip("a square, with a triangle on its right-hand side") == ["a square, with a triangle on its left-hand side"]
    assert flip("from top to bottom: a triangle, then a circle") == ["from bottom to top: a triangle, then a circle"]
    assert flip("the square is higher up than the circle") == ["the square is lower down than the circle"]
    assert flip("a circle atop a square") == ["a circle beneath a square"]
    assert flip("a square underneath a circle") == ["a square on top of a circle"]
    # a place said from the other object can end the caption
    assert flip("a red circle with a green triangle on its left") == ["a red circle with a green triangle on its right"]
    assert flip("a yellow circle, with one red triangle further right") == ["a yellow circle, with one red triangle further left"]
    assert flip("a circle, then a square higher up") == ["a circle, then a square lower down"]
    # a direction word alone is not a relation between two things
    assert flip("left arrow") == [] and flip("backhand index pointing left") == []


def test_a_rephrasing_has_a_negative_of_a_kind_when_its_caption_has_one():
    caption = "a red circle to the left of a blue square"
    assert rephrased_negatives(caption, "a blue square, and to its left a red circle") == [
        "a blue square, and to its right a red circle", "a red square, and to its left a blue circle"]
    # identical objects: the caption's flip changes nothing, so the rephrasing's is no negative
    assert hard_negatives("give me a circle underneath one circle", ("relation",)) != []
    assert rephrased_negatives("a circle below a circle", "give me a circle underneath one circle") == []


def test_negative_kinds_pick_the_perturbations():
    caption = "a large red circle to the left of a small blue square"
    assert hard_negatives(caption, ("relation",)) == ["a large red circle to the right of a small blue square"]
    assert hard_negatives(caption, ("colour", "size")) == hard_negatives(caption)[1:]
    assert hard_negatives("two squares", ("relation", "colour")) == []
    assert negative_kinds("all") == ("relation", "colour", "size", "count", "one")
    assert negative_kinds("count, relation") == ("relation", "count")  # in one order, whatever the spelling
    for bad in ("relations", "", "relation,,count"):
        with pytest.raises(InputError, match="relation, colour, size, count, one"):
            negative_kinds(bad)


def test_every_text_unet_stage_checks_its_negatives_when_its_options_are_read():
    from t2i.imagen.stages import BaseOptions, SuperResOptions
    from t2i.train.options import UNetOptions
    from t2i.unclip.stages import DecoderOptions

    for options in (BaseOptions, SuperResOptions, DecoderOptions, UNetOptions):
        assert options(contrast_negatives="colour,relation").contrast_negatives == "colour,relation"
        with pytest.raises(InputError, match="hard negatives must be"):
            options(contrast_negatives="flips")


def test_caption_table_encodes_negatives_beside_the_captions():
    data = ImageCaptionSet(images=np.zeros((3, 8, 8, 3), np.uint8),
                           captions=[["a circle above a square"], ["a red circle and a blue square", "a dog"], ["a dog"]])
    table = CaptionTable(data, negatives=True)
    assert table.texts == sorted({"a circle above a square", "a circle below a square", "a red circle and a blue square",
                                  "a blue circle and a red square", "a dog"})
    assert len(table.encoding.pooled) == len(table.texts)
    row = {t: i for i, t in enumerate(table.texts)}
    g = torch.Generator().manual_seed(0)
    rows = torch.tensor([row["a circle above a square"], row["a red circle and a blue square"], row["a dog"]])
    assert table.draw_negatives(rows, g).tolist() == [row["a circle below a square"], row["a blue circle and a red square"], -1]
    # the same captions without negatives: the same rows for the captions themselves
    plain = CaptionTable(data)
    assert plain.texts == sorted({"a circle above a square", "a red circle and a blue square", "a dog"})
    assert plain.draw_negatives(torch.tensor([0, 1]), g).tolist() == [-1, -1]


def test_caption_table_draws_an_image_that_a_caption_describes():
    data = ImageCaptionSet(images=np.zeros((4, 8, 8, 3), np.uint8),
                           captions=[["a circle", "two squares"], ["three squares"], ["two squares"], ["a circle above a square"]])
    table = CaptionTable(data, negatives=True)
    row = {t: i for i, t in enumerate(table.texts)}
    g = torch.Generator().manual_seed(0)
    drawn = [table.draw_images(torch.tensor([row["two squares"]] * 40), g).tolist() for _ in range(2)]
    assert set(drawn[0] + drawn[1]) == {0, 2}  # both images captioned so, and no other
    # a hard negative no image has (a relation flipped) draws none
    rows = torch.tensor([row["three squares"], row["a circle below a square"], row["a circle"]])
    assert table.draw_images(rows, g).tolist() == [1, -1, 0]


def test_hard_negatives_enter_the_image_to_text_side_only():
    m = CLIP(CLIPConfig(image_size=32, patch_size=8, image_width=16, image_depth=1, image_heads=2, text_width=16, text_depth=1, text_heads=2, embed_dim=4))
    with torch.no_grad():
        m.logit_scale.fill_(0.0)  # scale 1: the logits are the cosines
    image, text = torch.eye(2, 4), torch.eye(2, 4)
    negative = torch.tensor([[0.6, 0.8, 0.0, 0.0]])
    loss = m.contrastive_loss(image, text, negative_embed=negative)
    # image 0 sees logits [1, 0, 0.6], image 1 [0, 1, 0.8]; the text side is plain 2x2 InfoNCE
    i2t = (-torch.log_softmax(torch.tensor([1.0, 0.0, 0.6]), 0)[0] - torch.log_softmax(torch.tensor([0.0, 1.0, 0.8]), 0)[1]) / 2
    t2i_side = -torch.log_softmax(torch.tensor([1.0, 0.0]), 0)[0]
    assert torch.allclose(loss, 0.5 * (i2t + t2i_side))
    assert loss > m.contrastive_loss(image, text)
    # a negative that is an image's own caption is not held against that image
    masked = m.contrastive_loss(image, text, negative_embed=negative, negative_same=torch.tensor([[True], [True]]))
    assert torch.allclose(masked, m.contrastive_loss(image, text))


def test_clip_stage_draws_and_scores_hard_negatives():
    from t2i.checkpoint import Component
    from t2i.train.build import stage_section
    from t2i.unclip.clip_stage import ClipStage

    rng = np.random.default_rng(0)
    data = ImageCaptionSet(images=rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8),
                           captions=[["a circle above a square"], ["a circle below a square"], ["two squares"], ["a dog"]])
    model = CLIP(CLIPConfig(image_size=32, patch_size=8, image_width=16, image_depth=1, image_heads=2, text_width=16, text_depth=1, text_heads=2, embed_dim=8))
    stage = ClipStage(Component(model=model, role="clip"), data, hard_negatives=True)
    batch = stage.batch(0, 4, torch.Generator().manual_seed(3))
    captions = [stage.captions.texts[r] for r in batch["rows"]]
    negatives = [stage.captions.texts[r] for r in batch["neg_rows"]]
    expected = {"a circle above a square": {"a circle below a square"}, "a circle below a square": {"a circle above a square"},
                "two squares": {"three squares", "a square"}}
    assert len(negatives) == sum(c in expected for c in captions)  # one each, none for "a dog"
    assert all(n in expected[c] for n, c in zip(negatives, [c for c in captions if c in expected]))
    assert batch["neg_tokens"].shape[:2] == batch["neg_mask"].shape and len(batch["neg_pooled"]) == len(negatives) > 0
    # "a circle below a square" is image 1's own caption and image 0's hard negative: masked for image 1 only
    loss = stage.loss(model, batch, torch.Generator().manual_seed(4))
    assert torch.isfinite(loss) and loss.requires_grad
    loss.backward()
    # the preset key is accepted for the clip stage
    assert stage_section({"clip": {"options": {"hard_negatives": True}}}, "clip")["options"] == {"hard_negatives": True}


def test_clip_stage_match_shift_moves_each_caption_as_far_as_its_own_length_allows():
    """options.match_shift reads each caption of the head's batch at positions moved along at
    random, each by at most what its own tokens leave of max_tokens (a long caption beside it must
    not pin it to 0), drawn from the loss's generator; without it the loss is what it was."""
    from t2i.checkpoint import Component
    from t2i.unclip.clip_stage import ClipStage, match_shifts

    rng = np.random.default_rng(0)
    long = "a small red circle to the left of a large blue square on a plain white background, flat colours"
    data = ImageCaptionSet(images=rng.integers(0, 255, (3, 32, 32, 3), dtype=np.uint8), captions=[["a red circle"], ["two squares"], [long]])
    config = CLIPConfig(image_size=32, patch_size=8, image_width=16, image_depth=1, image_heads=2, text_width=16, text_depth=1, text_heads=2,
                        embed_dim=8, match_depth=1, max_tokens=22)
    torch.manual_seed(0)
    model = CLIP(config)
    stages = {k: ClipStage(Component(model=model, role="clip"), data, match_only=True, match_shift=k, max_length=22) for k in (0, 3, 100)}
    batch = stages[0].batch(0, 6, torch.Generator().manual_seed(1))
    assert int(batch["token_mask"].sum(1).max()) == 22  # the long caption fills max_tokens: it has no room
    loss = {k: stage.loss(model, batch, torch.Generator().manual_seed(2)) for k, stage in stages.items()}
    assert torch.equal(loss[0], stages[0].match_loss(model, model.image_tokens(batch["images"]), batch, None))
    assert all(torch.isfinite(v) for v in loss.values()) and len({float(v) for v in loss.values()}) == 3
    # the draw: each row within its own room, every shift in it reached
    mask = torch.arange(24)[None] < torch.tensor([24, 3, 10])[:, None]
    drawn = torch.stack([match_shifts(mask, 24, 100, torch.Generator().manual_seed(seed)) for seed in range(200)])
    assert drawn.amin(0).tolist() == [0, 0, 0] and drawn.amax(0).tolist() == [0, 21, 14]
    assert match_shifts(mask, 24, 5, torch.Generator().manual_seed(0)).max() <= 5


def test_hard_negative_accuracy():
    from t2i.models.retrieval import hard_negative_accuracy

    image, text = torch.eye(3, 4), torch.eye(3, 4)
    negatives = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    # image 0 prefers its caption over the negative; image 1's negative equals its caption (a tie
    # is no win); image 2 prefers its caption
    assert hard_negative_accuracy(image, text, negatives, torch.tensor([0, 1, 2])) == pytest.approx(2 / 3)
    assert hard_negative_accuracy(image, text, -text, torch.arange(3)) == 1.0


def test_clip_stage_gives_rephrased_captions_hard_negatives_on_both_sides(monkeypatch):
    from t2i.checkpoint import Component
    from t2i.text import shapes_wording

    monkeypatch.setattr(shapes_wording, "TYPO_WORDINGS", 0)  # "sqaures" would not say "square" below
    from t2i.unclip.clip_stage import ClipOptions, ClipStage

    rng = np.random.default_rng(0)
    captions = [["a square"], ["two squares"], ["three squares"], ["four squares"], ["a circle and a triangle"]]
    data = ImageCaptionSet(images=rng.integers(0, 255, (5, 32, 32, 3), dtype=np.uint8), captions=captions)
    config = CLIPConfig(image_size=32, patch_size=8, image_width=16, image_depth=1, image_heads=2, text_width=16, text_depth=1, text_heads=2, embed_dim=8,
                        match_depth=1)
    image_of = {c[0]: i for i, c in enumerate(captions)}
    for contrast_rephrased in (False, True):  # every drawn caption is reworded
        model = CLIP(config)
        stage = ClipStage(Component(model=model, role="clip"), data, hard_negatives=True, match_only=True, caption_augment=1.0,
                          contrast_rephrased=contrast_rephrased)
        batch = stage.batch(0, 8, torch.Generator().manual_seed(1))
        texts = [stage.captions.texts[r] for r in batch["rows"]]
        assert not set(texts) & set(image_of)
        if not contrast_rephrased:  # a rewording has no negative of its own, so no image either
            assert "neg_rows" not in batch and "neg_images" not in batch
            continue
        # caption side: the rewording's own negative, the count changed in its words
        owners = batch["neg_owner"].tolist()
        assert owners and all("square" in texts[i] for i in owners)
        for i, neg in zip(owners, batch["neg_rows"].tolist()):
            assert stage.captions.texts[neg] != texts[i] and "square" in stage.captions.texts[neg]  # "squares", "square shapes"
        # image side: for each reworded "n squares", the image of the caption's count-changed scene
        drawn = batch["images"]
        for i, image in zip(batch["neg_image_owner"].tolist(), batch["neg_images"]):
            own = next(c for c in image_of if torch.equal(drawn[i], image_like(data, image_of[c])))
            other = next(c for c in image_of if torch.equal(image, image_like(data, image_of[c])))
            assert other in hard_negatives(own)
        # only reworded square captions have one, and only where the negative drawn has an image ("five squares" has none)
        assert 0 < len(batch["neg_image_owner"]) and all("square" in texts[i] for i in batch["neg_image_owner"].tolist())
        loss = stage.loss(model, batch, torch.Generator().manual_seed(2))
        assert torch.isfinite(loss) and loss.requires_grad
    with pytest.raises(InputError, match="contrast_rephrased"):
        ClipOptions(contrast_rephrased=True, hard_negatives=True)


def image_like(data: ImageCaptionSet, index: int) -> torch.Tensor:
    from t2i.data.dataset import to_model_range

    return to_model_range(data.images[index : index + 1])[0]
