from django.dispatch import Signal

# Sent after the transaction that added an image commits; kwargs: image_id.
# The recommender app listens and queues the image pipeline (catalog never imports recommender).
image_added = Signal()
