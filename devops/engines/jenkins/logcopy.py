"""Copying one step's Jenkins log into the LogStore, resumable exactly after a controller restart.

A step's log is the logs of its flow nodes (`stageFlowNodes`, by id), each read
with `progressiveText?start=N`, concatenated in that order and written through
`open_step_writer` (masking, cap, live streaming). Nodes are copied strictly in
order: a node is read only once every node before it is over and copied to its
end, so the stored log is a pure function of Jenkins' bytes — never an
interleaving that depends on when the controller looked.

The guarantee (README "Jenkins engine"): after a controller restart (a new engine
instance) the copy goes on so that the stored log equals the whole Jenkins log,
masked, byte for byte — nothing twice, nothing lost — wherever the old controller
died. How:

  * The store's own length is the truth. After each pass that appended bytes a
    checkpoint is written beside the log (`S-M.jenkins.json`: the Jenkins
    position — nodes copied and the offset of the current one — and the writer's
    state at that position: stored size, cap counters), in one write with a
    checksum, AFTER the append.
  * A checkpoint is taken only where the masker holds nothing back (`held == 0`,
    which is the case after any piece ending in a newline), so "the Jenkins
    position" and "the stored size" describe the same point; elsewhere the previous
    checkpoint stays. The checkpoint never holds log text (held-back bytes may be
    the start of a secret).
  * On resume, with the log's stored length L and a checkpoint of stored size S <= L:
    read Jenkins again from the checkpoint's position and drop the first L - S bytes
    the writer would store (`skip`): they are what the dead controller appended
    after its last checkpoint. Masking and the cap are deterministic, so those bytes
    are regenerated identically. No checkpoint, or one the store does not match
    (S > L): the same from the start of the log with skip L. A log already
    finalised (`is_complete`) is not touched.

It needs the restarted controller to see the log as the store holds it: the same directory for
the file store; for the S3 store any machine — one that adopts the run of a dead controller pod
has neither its spool nor its checkpoint, so `size()` is what reached S3, the S3 writer continues
those chunks (S3LogStore.restore_spool), and the rest is regenerated from Jenkins.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from devops.logs import LogKey, LogStore, open_step_writer

log = logging.getLogger(__name__)

# wfapi status of a flow node that is over
NODE_FINAL = frozenset({"SUCCESS", "FAILED", "UNSTABLE", "ABORTED", "NOT_BUILT"})


def checkpoint_path(store: LogStore, key: LogKey) -> Path | None:
    """Beside the log: the file store's directory, or the S3 store's spool (None for other stores:
    then every resume re-reads the log from its start, still exactly)."""
    root = getattr(store, "root", None) or getattr(store, "spool_root", None)
    if root is None:
        return None
    return Path(root) / key.execution / f"{key.stage}-{key.step}.jenkins.json"


def _node_order(node: dict[str, Any]) -> tuple[int, str]:
    nid = str(node.get("id", ""))
    return (int(nid), nid) if nid.isdigit() else (1 << 62, nid)


class StepLogCopy:
    def __init__(self, store: LogStore, key: LogKey, *, mask: tuple[str, ...] = (), cap: int | None = None) -> None:
        self.store, self.key = store, key
        self.path = checkpoint_path(store, key)
        self.writer = None
        self._fd: int | None = None   # the checkpoint, open while the copy goes on
        self._width = 0
        self.done = False
        self.nodes: list[str] = []          # nodes copied to their end, in order
        self.current: tuple[str, int] | None = None   # (node, Jenkins offset) being copied
        if store.is_complete(key):
            self.done = True
            self._size = store.size(key)
            return
        stored = store.size(key)
        cp = self._load()
        if cp is None or int(cp["writer"]["size"]) > stored:
            cp = {"nodes": [], "current": None, "writer": None}
        skip = stored - (int(cp["writer"]["size"]) if cp["writer"] else 0)
        self.nodes = [str(n) for n in cp["nodes"]]
        self.current = (str(cp["current"][0]), int(cp["current"][1])) if cp["current"] else None
        self.writer = open_step_writer(store, key, mask=mask, cap=cap, resume=cp["writer"], skip=skip)
        self._size = stored

    @property
    def size(self) -> int:
        return self.writer.size if self.writer is not None else self._size

    def _load(self) -> dict[str, Any] | None:
        if self.path is None:
            return None
        try:
            text = self.path.read_text()
            self._width = len(text)  # records written from now on cover all of it
            body, digest = [*text.split("\n"), "", ""][:2]
            if hashlib.sha256(body.encode()).hexdigest() != digest.strip():
                raise ValueError("checksum")
            cp = json.loads(body)
            if cp.get("v") != 1 or not isinstance(cp.get("writer"), dict):
                return None
            return cp
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            log.warning("%s: unreadable Jenkins log checkpoint; copying from the start", self.key.path)
            return None

    def _save(self) -> None:
        """The checkpoint, written after the append it describes (see the module docstring).

        One pwrite() at offset 0 of the file kept open, padded to the longest record so far
        (JSON ignores the trailing spaces): a process that dies cannot leave half a record, and
        a record torn any other way fails its checksum and only means "copy from the start".
        (A rename per pass cost ~1 ms here; this costs a few µs.)"""
        if self.path is None or self.writer is None or self.writer.held:
            return
        body = json.dumps({"v": 1, "nodes": self.nodes, "current": list(self.current) if self.current else None,
                           "writer": self.writer.state()})
        record = f"{body}\n{hashlib.sha256(body.encode()).hexdigest()}\n".encode()
        self._width = max(self._width, len(record))
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            os.pwrite(self._fd, record.ljust(self._width), 0)
        except OSError as exc:  # the next pass tries again; a resume then re-reads more, still exactly
            log.warning("%s: cannot write the Jenkins log checkpoint: %s", self.key.path, exc)

    def _forget(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def copy(self, client, job: str, number: int, flow_nodes: list[dict[str, Any]], *, final: bool) -> bool:
        """One pass: at most one progressive-text request per node, in order; True once the log is whole."""
        if self.done:
            return True
        wrote = False
        whole = True
        for node in sorted(flow_nodes, key=_node_order):
            nid = str(node["id"])
            if nid in self.nodes:
                continue
            start = self.current[1] if self.current and self.current[0] == nid else 0
            piece = client.node_log(job, number, nid, start)
            if piece is None:  # a node without a log
                self.nodes.append(nid)
                self.current = None
                wrote = True
                continue
            if piece.data:
                self.writer.write(piece.data)
            self.current = (nid, piece.next)
            wrote = True
            over = str(node.get("status", "")) in NODE_FINAL
            if over and not piece.more and piece.next <= start + len(piece.data):
                self.nodes.append(nid)
                self.current = None
                continue
            whole = False
            break  # later nodes wait until this one is over: the log stays in order
        if final and whole:
            self.writer.close()
            self.done = True
            self._forget()
            if self.path is not None:
                self.path.unlink(missing_ok=True)  # the .done marker says it all now
            return True
        if wrote:
            self._save()
        return False

    def close(self) -> None:
        self._forget()
        if self.writer is not None and not self.done:
            self.writer.close()
