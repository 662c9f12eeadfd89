"""The seam between the API and the orchestrator: a signal sent after every committed write.

`app` never imports `tasks`; `tasks` connects to this signal (through the
`vmclarity.extensions` entry point) and turns each change into work.
"""

from blinker import Namespace

_signals = Namespace()

#: Sent after a create, update or delete of an API object has been committed,
#: with sender=<schema name> and keywords object_id, document (None when
#: deleted) and previous (None when created).
document_changed = _signals.signal("document-changed")


def changed(schema_name, object_id, document, previous):
    document_changed.send(schema_name, object_id=object_id, document=document, previous=previous)
