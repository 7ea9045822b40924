from django.apps import AppConfig


class RecommenderConfig(AppConfig):
    name = "recommender"
    verbose_name = "Recommender"

    def ready(self) -> None:
        from catalog.signals import image_added

        from .tasks import enqueue_image

        image_added.connect(enqueue_image, dispatch_uid="recommender-enqueue-image")
        from ml.training import register_trained_backbones  # backbones made by train_backbone

        register_trained_backbones()
