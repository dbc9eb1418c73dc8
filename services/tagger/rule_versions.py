"""MongoDB adapter for rule-set versions: every rule set that was ever active (``rule_versions``),
the one in force (``rule_active``: one document every tagger follows), the candidate running in
shadow and its tally of differences (``rule_shadow``).

A version id is the hash of the rule file's content (``rules.book.version_of``), so every
tagger process that loads the same file records the same version, once.
"""

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.tagger.rules.book import version_of
from services.tagger.rules.diff import RuleDiff
from services.tagger.rules.reasons import keep_words
from services.tagger.rules.schema import RuleFileError, RuleSet, parse_rules

log = structlog.get_logger("tagger.rules")

SHADOW_ID = "shadow"
ACTIVE_ID = "active"


@dataclass(frozen=True, slots=True)
class ActiveRules:
    """The rule set in force for every tagger, and how it got there."""

    version: str
    # the rule file's version when a tagger last adopted the file: a file whose version differs
    # was edited since, and becomes active; an equal one leaves an activated version in force
    file_version: str
    previous: str | None  # what was active before (the default target of a rollback)
    since: datetime
    by: str

    def summary(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "file_version": self.file_version,
            "previous": self.previous,
            "since": self.since.isoformat(),
            "by": self.by,
        }


@dataclass(frozen=True, slots=True)
class RuleVersion:
    version: str
    content: str
    by: str
    comment: str
    recorded_at: datetime
    first_active_at: datetime | None  # None: recorded (a candidate), never active
    last_active_at: datetime | None
    activations: int
    rules: int
    # the latest diff of this version against the rules then active (rule_diff_job.py):
    # job_id, active, window, status, started_at, and once done finished_at and report
    last_diff: dict[str, Any] | None = None

    def rule_set(self) -> RuleSet:
        return parse_rules(self.content, f"rule version {self.version}")

    def summary(self) -> dict[str, Any]:
        """Everything but the content (lists stay small)."""
        return {
            "version": self.version,
            "by": self.by,
            "comment": self.comment,
            "recorded_at": self.recorded_at.isoformat(),
            "first_active_at": _iso(self.first_active_at),
            "last_active_at": _iso(self.last_active_at),
            "activations": self.activations,
            "rules": self.rules,
            "last_diff": _diff_summary(self.last_diff),
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "RuleVersion":
        return cls(
            version=doc["version"],
            content=doc["content"],
            by=doc.get("by", ""),
            comment=doc.get("comment", ""),
            recorded_at=doc["recorded_at"],
            first_active_at=doc.get("first_active_at"),
            last_active_at=doc.get("last_active_at"),
            activations=int(doc.get("activations", 0)),
            rules=int(doc.get("rules", 0)),
            last_diff=doc.get("last_diff"),
        )


class RuleVersions:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self.versions = database["rule_versions"]
        self.shadow = database["rule_shadow"]
        self.active = database["rule_active"]
        self._parsed: dict[str, RuleSet | None] = {}  # recorded versions are never edited

    async def ensure_indexes(self) -> None:
        await self.versions.create_index([("version", ASCENDING)], unique=True)
        await self.versions.create_index([("last_active_at", DESCENDING)])
        await self.shadow.create_index(
            [("version", ASCENDING), ("rule_id", ASCENDING), ("tag", ASCENDING)]
        )

    async def record(
        self, text: str, rules: RuleSet, *, by: str, comment: str = "", active: bool = True
    ) -> str:
        """Store the rule set (once per version) and, when ``active``, note that it became the
        active one now. Idempotent: every process loading the same file records one version.
        Who and the comment are those of the first recording. Raises ``RuleFileError`` for a
        rule set not yet in force that rewords a rule version once in force (``keep_words``)."""
        version = version_of(text)
        await self.check_words(version, rules)
        now = datetime.now(UTC)
        update: dict[str, Any] = {
            "$setOnInsert": {
                "version": version,
                "content": text,
                "rules": len(rules.rules),
                "by": by,
                "comment": comment,
                "recorded_at": now,
            },
        }
        if active:
            update["$set"] = {"last_active_at": now}
            update["$min"] = {"first_active_at": now}
            update["$inc"] = {"activations": 1}
        else:
            update["$setOnInsert"]["activations"] = 0
        await self.versions.update_one({"version": version}, update, upsert=True)
        return version

    async def check_words(self, version: str, rules: RuleSet) -> None:
        """Raise ``RuleFileError`` if ``rules`` (recorded as ``version`` or not yet), never in
        force, gives a rule version once in force other words (``keep_words``). A version
        that was in force is not checked again: its words were those of its tags (two sets
        recorded before this check may disagree; the later one's words are read)."""
        recorded = await self.versions.find_one({"version": version}, {"activations": 1})
        if recorded is not None and recorded.get("activations", 0) > 0:
            return
        in_force = await self.active_rule_sets()
        if rules not in in_force:  # the same rules in another text (a comment) stand too
            keep_words(rules, in_force, f"rule version {version}")

    async def history(self, limit: int = 50) -> list[RuleVersion]:
        """Newest active first, then the candidates recorded but never active, newest first."""
        cursor = (
            self.versions.find({}, {"_id": 0})
            .sort([("last_active_at", DESCENDING), ("recorded_at", DESCENDING)])
            .limit(limit)
        )
        return [RuleVersion.from_document(doc) async for doc in cursor]

    async def active_rule_sets(self) -> list[RuleSet]:
        """Every rule set that was ever in force, the one in force longest ago first (a
        candidate never activated gave no tags); each parsed once per process, off the event
        loop. One that no longer parses (a later schema) is left out."""
        cursor = self.versions.find({"activations": {"$gt": 0}}, {"_id": 0, "version": 1}).sort(
            "last_active_at", ASCENDING
        )
        order = [doc["version"] async for doc in cursor]
        unparsed = [version for version in order if version not in self._parsed]
        if unparsed:
            async for doc in self.versions.find(
                {"version": {"$in": unparsed}}, {"_id": 0, "version": 1, "content": 1}
            ):
                self._parsed[doc["version"]] = await asyncio.to_thread(_parsed_or_none, doc)
        return [rules for version in order if (rules := self._parsed.get(version)) is not None]

    async def get(self, version: str) -> RuleVersion | None:
        doc = await self.versions.find_one({"version": version}, {"_id": 0})
        return None if doc is None else RuleVersion.from_document(doc)

    # ── diffs against history, kept with the candidate ────────────────────────────────────

    async def note_diff(self, version: str, diff: dict[str, Any]) -> None:
        """A diff of ``version`` started (``diff``: job_id, active, window, started_at): the
        version's latest diff from now on, running (unless one started later was noted)."""
        await self.versions.update_one(
            {"version": version, "last_diff.started_at": {"$not": {"$gte": diff["started_at"]}}},
            {"$set": {"last_diff": {**diff, "status": "running"}}},
        )

    async def keep_diff(self, version: str, diff: dict[str, Any], report: dict[str, Any]) -> None:
        """The result of a diff (``diff`` as noted at its start), kept with the version unless
        a diff of it started later (that one's is kept; this one's stays in its job). Written
        whole, so it does not matter whether the note of its start came first."""
        await self.versions.update_one(
            {"version": version, "last_diff.started_at": {"$not": {"$gt": diff["started_at"]}}},
            {
                "$set": {
                    "last_diff": {
                        **diff,
                        "status": "done",
                        "finished_at": datetime.now(UTC),
                        "report": report,
                    }
                }
            },
        )

    # ── the version in force ──────────────────────────────────────────────────────────────

    async def active_rules(self) -> ActiveRules | None:
        doc = await self.active.find_one({"_id": ACTIVE_ID})
        if doc is None:
            return None
        return ActiveRules(
            version=doc["version"],
            file_version=doc["file_version"],
            previous=doc.get("previous"),
            since=doc["since"],
            by=doc.get("by", ""),
        )

    async def adopt_file(self, text: str, rules: RuleSet, *, by: str, comment: str) -> str:
        """Record the rule file a tagger read and answer the version in force: the file's, when
        nothing is active yet or the file changed since a tagger last adopted it; else the one
        in force (possibly activated through the API, which a restart must not undo)."""
        file_version = await self.record(text, rules, by=by, comment=comment, active=False)
        current = await self.active_rules()
        if current is not None and current.file_version == file_version:
            return current.version
        if await self._switch(current, file_version, file_version=file_version, by=by):
            return file_version
        moved = await self.active_rules()  # another tagger switched first: follow it
        return file_version if moved is None else moved.version

    async def activate(self, version: str, *, by: str, expected: ActiveRules | None) -> bool:
        """Make a recorded version the one in force, if ``expected`` is still in force
        (compare-and-set: two activations at once cannot both win). False: it moved meanwhile."""
        file_version = expected.file_version if expected is not None else version
        return await self._switch(expected, version, file_version=file_version, by=by)

    async def _switch(
        self, expected: ActiveRules | None, version: str, *, file_version: str, by: str
    ) -> bool:
        now = datetime.now(UTC)
        document = {
            "version": version,
            "file_version": file_version,
            "previous": expected.version if expected is not None else None,
            "since": now,
            "by": by,
        }
        if expected is None:
            try:
                await self.active.insert_one({"_id": ACTIVE_ID, **document})
            except DuplicateKeyError:
                return False
        else:
            moved = await self.active.update_one(
                {
                    "_id": ACTIVE_ID,
                    "version": expected.version,
                    "file_version": expected.file_version,
                    "since": expected.since,
                },
                {"$set": document},
            )
            if moved.matched_count == 0:
                return False
        if expected is None or expected.version != version:
            await self.versions.update_one(
                {"version": version},
                {
                    "$set": {"last_active_at": now},
                    "$min": {"first_active_at": now},
                    "$inc": {"activations": 1},
                },
            )
        return True

    # ── shadow mode ─────────────────────────────────────────────────────────────────────

    async def shadow_version(self) -> str | None:
        doc = await self.shadow.find_one({"_id": SHADOW_ID})
        return None if doc is None else doc.get("version")

    async def start_shadow(self, version: str) -> None:
        """Run ``version`` in shadow from now, its tally from zero."""
        await self.shadow.delete_many({"version": version, "change": {"$exists": True}})
        await self.shadow.update_one(
            {"_id": SHADOW_ID},
            {"$set": {"version": version, "since": datetime.now(UTC)}},
            upsert=True,
        )

    async def stop_shadow(self) -> None:
        await self.shadow.delete_one({"_id": SHADOW_ID})

    async def count_shadow(self, version: str, tally: RuleDiff) -> None:
        """Add one batch's differences to the shadow tally: one bulk write per batch."""
        writes = [
            UpdateOne(
                {"version": version, "rule_id": rule_id, "tag": tag, "change": change.value},
                {"$inc": {"orders": count}},
                upsert=True,
            )
            for (rule_id, tag, change), count in tally.by_rule.items()
        ]
        writes.append(
            UpdateOne(
                {"version": version, "rule_id": "", "tag": "", "change": "compared"},
                {"$inc": {"orders": tally.orders_compared, "changed": tally.orders_changed}},
                upsert=True,
            )
        )
        await self.shadow.bulk_write(writes, ordered=False)

    async def shadow_summary(self) -> dict[str, Any]:
        """The candidate in shadow (if any) and its differences so far, per rule and tag."""
        setting = await self.shadow.find_one({"_id": SHADOW_ID})
        if setting is None:
            return {
                "version": None,
                "since": None,
                "orders_compared": 0,
                "orders_changed": 0,
                "differences": [],
            }
        version = setting["version"]
        rows = await self.shadow.find(
            {"version": version, "change": {"$exists": True}}, {"_id": 0}
        ).to_list(None)
        totals = next((r for r in rows if r["change"] == "compared"), {})
        differences = sorted(
            (
                {
                    "rule_id": r["rule_id"],
                    "tag": r["tag"],
                    "change": r["change"],
                    "orders": r["orders"],
                }
                for r in rows
                if r["change"] != "compared"
            ),
            key=lambda r: (r["tag"], r["change"], r["rule_id"]),
        )
        return {
            "version": version,
            "since": setting["since"].isoformat(),
            "orders_compared": totals.get("orders", 0),
            "orders_changed": totals.get("changed", 0),
            "differences": differences,
        }


def _diff_summary(diff: dict[str, Any] | None) -> dict[str, Any] | None:
    """A version's latest diff without its per-tag report (version lists stay small)."""
    if diff is None:
        return None
    report = diff.get("report") or {}
    return {
        "job_id": diff["job_id"],
        "active": diff["active"],
        "status": diff["status"],
        "started_at": _iso(diff.get("started_at")),
        "finished_at": _iso(diff.get("finished_at")),
        "orders_compared": report.get("orders_compared"),
        "orders_changed": report.get("orders_changed"),
    }


def _parsed_or_none(document: dict[str, Any]) -> RuleSet | None:
    try:
        return parse_rules(document["content"], f"rule version {document['version']}")
    except RuleFileError as error:
        log.warning("recorded_rules_unreadable", version=document["version"], error=str(error))
        return None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
