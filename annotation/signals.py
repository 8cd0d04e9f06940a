"""What annotation announces to the apps built on it, which it does not import."""

from django.dispatch import Signal

# Labels changed in a way that can change where items belong: an item's human labels are
# complete (they reached the study's overlap) or changed after, labels were imported, a judge
# run ended; or the study's routing rules changed. Sent inside the transaction that changed
# them, with `study` and `items` (item ids, or None for all of the study's); receivers defer
# their work to its commit.
labels_settled = Signal()

# Labels or items of a study were written: labels added, replaced or removed, items added
# or changed. Sent inside the transaction that wrote them, with `study`; what is computed
# from the labels (the report's cache key) listens. Every writer sends it, so a receiver
# need not ask the database whether anything changed.
labels_written = Signal()
