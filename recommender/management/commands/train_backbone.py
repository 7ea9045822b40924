from __future__ import annotations

import random

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog.models import Collection, Item, ItemImage
from recommender.embeddings import embedding_model_ensure


class Command(BaseCommand):
    help = ("Fine-tune (--pretrained) or train from scratch (--scratch) a CNN on a collection's labelled "
            "images, keep the best validation epoch and register it as an embedding model; then "
            "`reembed --collection SLUG --model NAME --activate` switches searches to it.")

    def add_arguments(self, parser) -> None:
        from ml.training import ARCHS

        parser.add_argument("--collection", required=True)
        parser.add_argument("--arch", choices=ARCHS, default="resnet18")
        start = parser.add_mutually_exclusive_group()
        start.add_argument("--pretrained", action="store_true", help="Start from ImageNet weights (never downloaded).")
        start.add_argument("--scratch", action="store_true", help="Kaiming-initialised weights (the default).")
        parser.add_argument("--epochs", type=int, default=1)
        parser.add_argument("--batch-size", type=int, default=32)
        parser.add_argument("--lr", type=float, default=None)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--limit-per-label", type=int, default=0,
                            help="Use at most N train and N validation images per label (0: all), for a quick run.")
        parser.add_argument("--name", default="", help="Embedding model name (default: ARCH-ft|scratch|top-SLUG).")
        parser.add_argument("--top-blocks", type=int, default=0,
                            help="Train only the last N blocks of the pretrained efficientnet-lite0 over cached "
                                 "activations of the frozen lower blocks (practical on CPU; implies --pretrained).")
        parser.add_argument("--views", type=int, default=None,
                            help="With --top-blocks: augmented views cached per train image (default 6).")
        parser.add_argument("--input-size", type=int, default=None,
                            help="With --top-blocks: the square input the model is trained and served at "
                                 "(default 288).")

    def handle(self, *args, collection: str, arch: str, pretrained: bool, scratch: bool, epochs: int,
               batch_size: int, lr: float | None, seed: int, limit_per_label: int, name: str, top_blocks: int,
               views: int | None, input_size: int | None, **options) -> None:
        from ml.embedders import WeightsMissing
        from ml.training import TopBlockConfig, TrainConfig, train_backbone, train_top_blocks

        target = Collection.objects.filter(slug=collection).first()
        if target is None:
            raise CommandError(f"no collection with slug {collection!r}")
        if epochs < 1 or batch_size < 1:
            raise CommandError("--epochs and --batch-size must be at least 1")
        train = _rows(target, Item.Split.TRAIN, limit_per_label, seed)
        val = _rows(target, Item.Split.VALIDATION, limit_per_label, seed)
        if top_blocks and (arch != "efficientnet-lite0" or scratch):
            raise CommandError("--top-blocks fine-tunes the pretrained efficientnet-lite0: use --arch efficientnet-lite0")
        if views is not None and (not top_blocks or views < 0):
            raise CommandError("--views needs --top-blocks and must be 0 or more")
        if input_size is not None and (not top_blocks or not 32 <= input_size <= 512):
            raise CommandError("--input-size needs --top-blocks and must be from 32 to 512")
        kind = "top" if top_blocks else "ft" if pretrained else "scratch"
        name = name or f"{arch}-{kind}-{target.slug}"
        if top_blocks:
            defaults = TopBlockConfig()
            config = TopBlockConfig(train_blocks=top_blocks, views=defaults.views if views is None else views,
                                    epochs=epochs, batch_size=batch_size, learning_rate=lr or defaults.learning_rate,
                                    seed=seed, input_size=input_size or defaults.input_size)
            trainer = train_top_blocks
        else:
            config = TrainConfig(arch=arch, pretrained=pretrained, epochs=epochs, batch_size=batch_size,
                                 learning_rate=lr, seed=seed)
            trainer = train_backbone
        self.stdout.write(f"training {name}: {len(train)} train / {len(val)} validation images, "
                          f"{len({label for _, label in train})} labels, {epochs} epoch(s)")
        try:
            result = trainer(train, val, config, name, settings.STYLESITE_MODEL_CACHE,
                                    progress=self._progress if options["verbosity"] > 1 else lambda f, m: None)
        except (WeightsMissing, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"device: {result.device}")
        if top_blocks:
            self.stdout.write(f"cached the lower blocks' activations in {result.cache_seconds:.0f} s; "
                              f"trained in {result.train_seconds:.0f} s; epochs kept by validation P@10")
        self.stdout.write(f"{'epoch':>5}  {'train loss':>10}  {'train acc':>9}  {'val acc':>7}  {'val P@10':>8}  "
                          f"{'seconds':>7}")
        for h in result.history:
            mark = "  <- kept" if h.epoch == result.best_epoch else ""
            p10 = "-" if h.val_p10 is None else f"{h.val_p10:.4f}"
            self.stdout.write(f"{h.epoch:>5}  {h.train_loss:>10.4f}  {h.train_accuracy:>9.4f}  "
                              f"{h.val_accuracy:>7.4f}  {p10:>8}  {h.seconds:>7.1f}{mark}")
        model = embedding_model_ensure(name)
        self.stdout.write(self.style.SUCCESS(
            f"registered embedding model {model} ({result.dimension}-d); best validation accuracy "
            f"{result.best_val_accuracy:.4f} at epoch {result.best_epoch}. Activate with: manage.py reembed "
            f"--collection {target.slug} --model {name} --activate"))

    def _progress(self, fraction: float, message: str) -> None:
        self.stderr.write(f"\r{fraction:6.1%} {message}", ending="")


def _rows(collection: Collection, split: str, limit: int, seed: int) -> list[tuple[str, str]]:
    """(original file path, label) of the first image of each labelled item in ``split``."""
    rows = (ItemImage.objects.filter(item__collection=collection, item__split=split, position=0,
                                     status__in=ItemImage.VISIBLE_STATUSES).exclude(item__label="")
            .order_by("id").values_list("original", "item__label"))
    by_label: dict[str, list[str]] = {}
    for original, label in rows:
        by_label.setdefault(label, []).append(original)
    rng = random.Random(seed)
    out = []
    for label, files in sorted(by_label.items()):
        if limit:
            files = rng.sample(files, min(limit, len(files)))
        out += [(str(settings.MEDIA_ROOT / f), label) for f in files]
    return out
