from django.dispatch import Signal

# Sent after the transaction that added images (or sent them back to pending) commits; kwargs:
# image_ids (a list: an import announces each chunk of rows at once). The recommender app listens
# and queues the image pipeline (catalog never imports recommender).
image_added = Signal()

# Sent after the transaction that deleted items or images commits; kwargs: collection_id,
# item_ids (items deleted), image_ids (images deleted, with those of the deleted items).
# Their vectors and votes went with them by cascade; listeners drop what they derived (e.g. refit).
catalogue_deleted = Signal()
