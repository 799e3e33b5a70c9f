"""ja-vlm-mini data: a tiny synthetic visual world of coloured shapes, asked about in Japanese.

An image is 32 x 32 RGB: one shape (``丸`` circle, ``三角形`` triangle, ``四角`` square) of one colour
(6 colours) on a grey background, near the centre, its size and place drawn at random (seeded). Every example asks
the same question, ``何がありますか。`` ("what is there?"); the Japanese reference answer is the
colour adjective and the shape, ``赤い丸`` (MeCab words ``赤い`` / ``丸``: an answer with the right
colour or the right shape only gets ROUGE-L 0.5). The *English-framed* answer puts the Japanese name
in an English sentence, ``赤い丸 is in the picture.``: fastText gives every such answer P(ja) <= 0.30
and every reference P(ja) >= 0.59 (hence ``三角形``, not ``三角``, whose answers fastText does not
always take for Japanese), so the ``_ja`` rule scores a framed answer as empty (0), though it names
the object.

Task rows follow the JA-VG-VQA-500 row schema as :func:`evobench.lmdata.vqa.load_ja_vg_vqa` returns
it (``id``, ``question``, ``answer``, ``image`` as an :class:`~evobench.lmdata.images.ImageInput` of
PNG bytes), so :class:`evobench.tasks.ja_vqa.JaVQATask` scores them as it scores the real data.
Training examples are drawn from other seeds than the task's (search split seed 1, test split seed
2, training seed 100 + ...). Text-only training examples describe the object in words where the
image would be (``red circle`` or ``赤い丸``) and ask in English or Japanese.
"""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import dataclass

SIZE = 32
BACKGROUND = (128, 128, 128)
# (English, Japanese adjective, RGB)
COLOURS = (("red", "赤い", (220, 30, 30)), ("blue", "青い", (30, 60, 230)), ("green", "緑の", (30, 180, 40)),
           ("yellow", "黄色い", (240, 220, 20)), ("white", "白い", (250, 250, 250)), ("black", "黒い", (10, 10, 10)))
SHAPES = (("circle", "丸"), ("triangle", "三角形"), ("square", "四角"))
QUESTION_JA = "何がありますか。"
QUESTION_EN = "What is in the picture?"
FRAME = "{} is in the picture."  # the English-framed answer


def framed(answer: str) -> str:
    """``answer`` in the English frame: ``赤い丸`` -> ``赤い丸 is in the picture.``"""
    return FRAME.format(answer)


@dataclass(frozen=True)
class Scene:
    colour: int  # index into COLOURS
    shape: int  # index into SHAPES
    size: int  # side of the shape's bounding box, pixels
    x: int  # top-left corner of the bounding box
    y: int

    @property
    def ja(self) -> str:
        return COLOURS[self.colour][1] + SHAPES[self.shape][1]

    @property
    def framed(self) -> str:
        return framed(self.ja)

    @property
    def en(self) -> str:
        return f"{COLOURS[self.colour][0]} {SHAPES[self.shape][0]}"


def random_scene(rng: random.Random) -> Scene:
    """A shape of 18-26 pixels, its centre within 2 pixels of the image's."""
    size = rng.randint(18, 26)
    corner = (SIZE - size) // 2
    return Scene(rng.randrange(len(COLOURS)), rng.randrange(len(SHAPES)), size,
                 corner + rng.randint(-2, 2), corner + rng.randint(-2, 2))


def draw(scene: Scene):
    """The scene as an RGB PIL image of SIZE x SIZE pixels."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (SIZE, SIZE), BACKGROUND)
    d = ImageDraw.Draw(im)
    x0, y0, x1, y1 = scene.x, scene.y, scene.x + scene.size - 1, scene.y + scene.size - 1
    fill = COLOURS[scene.colour][2]
    if scene.shape == 0:
        d.ellipse((x0, y0, x1, y1), fill=fill)
    elif scene.shape == 1:
        d.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)
    else:
        d.rectangle((x0, y0, x1, y1), fill=fill)
    return im


def png_bytes(scene: Scene) -> bytes:
    buf = io.BytesIO()
    draw(scene).save(buf, format="PNG")
    return buf.getvalue()


def scenes(n: int, seed: int) -> list[Scene]:
    rng = random.Random(seed)
    return [random_scene(rng) for _ in range(n)]


def row(scene: Scene, i: int) -> dict:
    """One task row in the JA-VG-VQA-500 schema (image as an ImageInput of PNG bytes)."""
    from evobench.lmdata.images import ImageInput

    data = png_bytes(scene)
    return {"id": str(i), "question": QUESTION_JA, "answer": scene.ja,
            "image": ImageInput(hashlib.sha256(data).hexdigest(), data, (SIZE, SIZE))}


def task_splits(n_search: int = 32, n_test: int = 64) -> dict[str, list[dict]]:
    """``{"search": rows, "test": rows}`` (seeds 1 and 2)."""
    return {"search": [row(s, i) for i, s in enumerate(scenes(n_search, 1))],
            "test": [row(s, i) for i, s in enumerate(scenes(n_test, 2))]}


def text_examples(n: int, seed: int, japanese: bool) -> list[tuple[str, str, str]]:
    """``(description, question, answer)`` text-only examples: the object described in English or
    Japanese, asked about in English or Japanese, answered in Japanese (``japanese``: ``赤い丸``) or in
    the English frame (``赤い丸 is in the picture.``)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s = random_scene(rng)
        desc = s.en if rng.random() < 0.5 else s.ja
        question = QUESTION_JA if rng.random() < 0.5 else QUESTION_EN
        out.append((desc, question, s.ja if japanese else s.framed))
    return out
