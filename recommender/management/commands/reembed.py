from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.models import Collection, ItemImage
from recommender.embeddings import (
    active_model_switch,
    embedding_model_ensure,
    embeddings_upsert,
)
from recommender.models import Embedding
from recommender.pipeline import PermanentFailure, stored_crop


class Command(BaseCommand):
    help = ("Embed every ready image of a collection with another model; with --activate, switch the "
            "collection's searches to it in one transaction once every image has a vector.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--collection", required=True)
        parser.add_argument("--model", required=True, help="Embedder name, e.g. efficientnet-lite0, resnet50.")
        parser.add_argument("--activate", action="store_true")
        parser.add_argument("--batch-size", type=int, default=32)

    def handle(self, *args, collection: str, model: str, activate: bool, batch_size: int, **options) -> None:
        from ml.embedders import UnknownModel, WeightsMissing, get_embedder

        target = Collection.objects.filter(slug=collection).first()
        if target is None:
            raise CommandError(f"no collection with slug {collection!r}")
        try:
            embedding_model = embedding_model_ensure(model)
            embedder = get_embedder(model)
        except (UnknownModel, WeightsMissing) as exc:
            raise CommandError(str(exc)) from exc
        # Loop: images that became ready while we worked are picked up before the switch.
        total = 0
        failed_ids: set[int] = set()
        while True:
            todo = list(
                ItemImage.objects.filter(collection=target, status=ItemImage.Status.READY)
                .exclude(embeddings__model=embedding_model)
                .select_related("collection").order_by("pk")
            )
            todo = [img for img in todo if img.pk not in failed_ids]
            if not todo:
                break
            bar = tqdm(total=len(todo), desc=f"Embedding with {model}", unit="image", file=self.stderr,
                       disable=options["verbosity"] == 0)
            for start in range(0, len(todo), batch_size):
                batch, crops = [], []
                for image in todo[start:start + batch_size]:
                    try:
                        crops.append(stored_crop(image, embedder.spec.input_size))
                        batch.append(image)
                    except PermanentFailure as exc:
                        failed_ids.add(image.pk)
                        self.stderr.write(f"image {image.pk}: {exc}")
                if batch:
                    vectors = embedder.embed(crops)
                    embeddings_upsert([Embedding(image=img, item_id=img.item_id, model=embedding_model,
                                                 vector=vec.tolist()) for img, vec in zip(batch, vectors)])
                total += len(batch)
                bar.update(len(todo[start:start + batch_size]))
            bar.close()
        self.stdout.write(f"Embedded {total} image(s) of {target.slug} with {embedding_model}; {len(failed_ids)} failed.")
        if activate:
            if failed_ids:
                raise CommandError(f"not switching: {len(failed_ids)} image(s) could not be embedded")
            active_model_switch(target, embedding_model)
            self.stdout.write(self.style.SUCCESS(f"{target.slug} now searches {embedding_model}."))
