"""Pagination that never drops a page: a sans-I/O walk over pages, offsets and time ranges.

:func:`walk` is a generator: it yields one :class:`PageRequest` per page and receives the
decoded body (or a :class:`Failed` holding the error after the client's own retries); the
shells (``Client.paginate``, ``AsyncClient.paginate``) only send. The quota paces every page,
because every page is an ordinary request of the client.

A long time range is split into the endpoint's ``max_span`` per call; inside each chunk the
walk follows pages until a short page (or the provider's total). Rows seen twice (chunks or
pages that overlap) are kept once, and rows with a time are returned sorted by time, then
symbol. A page that fails (its request, or an answer that does not fit the model) raises
:class:`PaginationError`, which carries the rows fetched so far and a :class:`Resume` point;
with ``on_error="skip"`` it is recorded in :attr:`Rows.skipped` instead and
:attr:`Rows.complete` is False (after ``MAX_FAILED_IN_A_ROW`` failed pages in a row the rest
of that chunk is skipped, and recorded).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal, NamedTuple, overload

from ._endpoints import Endpoint
from ._exceptions import CoinguardError, ConfigurationError, ResponseDecodeError
from ._frames import frame_of, html_table

__all__ = [
    "Failed",
    "PageFailure",
    "PageRequest",
    "PaginationError",
    "Resume",
    "Rows",
    "chunks",
    "walk",
]

OnError = Literal["raise", "skip"]
#: With ``on_error="skip"``, this many failed pages in a row end a chunk (recorded as skipped):
#: a failed page cannot tell whether more pages follow it.
MAX_FAILED_IN_A_ROW = 3


class PageRequest(NamedTuple):
    """One page to fetch: path and query, and a label for messages and progress."""

    path: str
    params: dict[str, Any]
    label: str


class Failed(NamedTuple):
    """What a shell sends back when a page's request failed after the client's retries."""

    error: CoinguardError


@dataclass(frozen=True)
class PageFailure:
    """A page that failed and was skipped (``on_error="skip"``): which, and why."""

    label: str
    error: str


@dataclass(frozen=True)
class Resume:
    """Where a pagination stopped: pass it back as ``resume=`` to fetch only what is left.

    It holds the rows already fetched, so the finished result has every row.
    """

    endpoint: str
    params: Mapping[str, Any]
    start: date | None
    end: date | None
    span: timedelta | None
    limit: int | None
    chunk: int
    position: int
    rows: tuple[Any, ...]
    skipped: tuple[PageFailure, ...] = ()
    pages: int = 0

    def __repr__(self) -> str:
        return (
            f"Resume({self.endpoint!r}, chunk={self.chunk}, position={self.position}, "
            f"rows={len(self.rows)})"
        )


class PaginationError(CoinguardError):
    """A page failed after the client's retries; nothing fetched is lost.

    ``rows`` are the rows fetched before it, ``resume`` continues from the failed page
    (``client.paginate(..., resume=err.resume)``), ``pages`` counts the pages done, and
    ``error`` is the page's own coinguard error (an attribute, not a chained cause: no error
    is chained in coinguard).
    """

    def __init__(
        self,
        message: str,
        *,
        rows: tuple[Any, ...],
        resume: Resume,
        pages: int,
        error: CoinguardError,
    ):
        super().__init__(message)
        self.rows = rows
        self.resume = resume
        self.pages = pages
        self.error = error


class Rows(Sequence[Any]):
    """The rows of a pagination, as validated models, with what was skipped.

    ``complete`` is False when a page was skipped (``on_error="skip"``); ``skipped`` says
    which. ``to_pandas()`` (or ``.df``) gives a DataFrame (the ``pandas`` extra).
    """

    def __init__(
        self,
        endpoint: str,
        rows: Sequence[Any],
        *,
        skipped: Sequence[PageFailure] = (),
        pages: int = 0,
    ) -> None:
        self.endpoint = endpoint
        self._rows = tuple(rows)
        self.skipped = tuple(skipped)
        self.pages = pages

    @property
    def complete(self) -> bool:
        """True when no page was skipped."""
        return not self.skipped

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        return self._rows[index]

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame``: a UTC ``DatetimeIndex`` named ``time`` for timed rows,
        float64 prices and volumes, ``str`` symbols."""
        return frame_of(self._rows)

    @property
    def df(self) -> Any:
        """Same as :meth:`to_pandas`."""
        return self.to_pandas()

    def __repr__(self) -> str:
        state = "complete" if self.complete else f"{len(self.skipped)} pages skipped"
        return f"Rows({self.endpoint!r}, {len(self)} rows, {self.pages} pages, {state})"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def _repr_html_(self) -> str:
        head = [r.model_dump() for r in self._rows[:5]]
        caption = repr(self)
        return html_table(caption, head)


def chunks(start: date | None, end: date | None, span: timedelta | None) -> list[tuple[Any, Any]]:
    """``[start, end]`` (inclusive days) cut into pieces of at most ``span`` days.

    >>> chunks(date(2026, 1, 1), date(2026, 1, 5), timedelta(days=2))
    [(datetime.date(2026, 1, 1), datetime.date(2026, 1, 2)), (datetime.date(2026, 1, 3), datetime.date(2026, 1, 4)), (datetime.date(2026, 1, 5), datetime.date(2026, 1, 5))]
    """  # noqa: E501
    if start is None or end is None:
        return [(start, end)]
    if end < start:
        raise ConfigurationError(f"the range ends ({end}) before it starts ({start})")
    days = max(1, span.days) if span is not None else (end - start).days + 1
    out = []
    while start <= end:
        last = min(end, start + timedelta(days=days - 1))
        out.append((start, last))
        start = last + timedelta(days=1)
    return out


def as_day(value: date | datetime | str | None, name: str) -> date | None:
    """A range bound as a UTC calendar day.

    A string is read whole: ``'YYYY-MM-DD'`` is that day; an ISO datetime is its UTC day (one
    without an offset is UTC), the same day its ``datetime`` gives. Anything else is an error
    naming ``name``.

    >>> as_day("2026-11-01T23:00:00-05:00", "end")
    datetime.date(2026, 11, 2)
    """
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    moment: datetime | None = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            if len(text) > 10 and text[10] in "Tt ":
                moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in "Zz" else text)
        except ValueError:
            moment = None
    if moment is not None:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).date()
    raise ConfigurationError(
        f"{name} must be a date, a datetime, 'YYYY-MM-DD' or an ISO datetime string, "
        f"got {value!r:.60}"
    )


@dataclass
class _State:
    rows: list[Any] = field(default_factory=list)
    skipped: list[PageFailure] = field(default_factory=list)
    pages: int = 0


def walk(
    endpoint: Endpoint,
    params: Mapping[str, Any],
    *,
    start: date | None = None,
    end: date | None = None,
    span: timedelta | None = None,
    limit: int | None = None,
    on_error: OnError = "raise",
    resume: Resume | None = None,
) -> Generator[PageRequest, Any, Rows]:
    """Walk every page of ``endpoint``; yields requests, receives bodies; returns :class:`Rows`."""
    pager = endpoint.paging
    if on_error not in ("raise", "skip"):
        raise ConfigurationError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if (start is not None or end is not None) and (pager is None or pager.start_param is None):
        raise ConfigurationError(f"endpoint {endpoint.name!r} takes no time range")
    if start is not None and end is None:
        end = datetime.now(timezone.utc).date()
    if end is not None and start is None:
        raise ConfigurationError("a time range needs start= as well as end=")
    span = span if span is not None else (pager.max_span if pager is not None else None)
    pieces = chunks(start, end, span)
    size = min(limit or (pager.max_limit if pager else 0), pager.max_limit if pager else 0)
    state = _State()
    first_chunk, first_position = 0, pager.first if pager else 1
    if resume is not None:
        state.rows, state.skipped = list(resume.rows), list(resume.skipped)
        state.pages = resume.pages
        first_chunk, first_position = resume.chunk, resume.position
    for index in range(first_chunk, len(pieces)):
        lo, hi = pieces[index]
        position = first_position if index == first_chunk else (pager.first if pager else 1)
        failed_in_a_row = 0
        while True:
            query = dict(params)
            if pager is not None:
                if pager.style != "none":
                    query[pager.limit_param] = size
                    query[pager.page_param] = position
                if lo is not None and pager.start_param and pager.end_param:
                    query[pager.start_param] = lo.isoformat()
                    query[pager.end_param] = hi.isoformat()
            path, q = endpoint.request(query)
            label = _label(endpoint, pager, position, lo, hi)
            outcome = yield PageRequest(path, q, label)
            got: list[Any] = []
            if not isinstance(outcome, Failed):
                try:
                    got = endpoint.parse(outcome)
                except ResponseDecodeError as exc:
                    # an answer that does not fit the model is a failed page like any other:
                    # the rows so far and the resume point are kept, or it is recorded
                    outcome = Failed(exc)
            if isinstance(outcome, Failed):
                if on_error == "skip":
                    state.skipped.append(PageFailure(label, str(outcome.error)))
                    failed_in_a_row += 1
                    if pager is None or pager.style == "none":
                        break
                    if failed_in_a_row >= MAX_FAILED_IN_A_ROW:
                        # a failed page cannot say whether more follow: stop, and say so
                        state.skipped.append(
                            PageFailure(
                                f"{label} and any page after it",
                                f"not fetched: {failed_in_a_row} pages in a row failed",
                            )
                        )
                        break
                    position = _next(pager, position, size)
                    continue
                where = Resume(
                    endpoint.name, dict(params), start, end, span, limit, index, position,
                    tuple(state.rows), tuple(state.skipped), state.pages,
                )  # fmt: skip
                raise PaginationError(
                    f"{endpoint.name}: {label} failed ({type(outcome.error).__name__}): "
                    f"{len(state.rows)} rows from {state.pages} pages are kept; continue with "
                    f"paginate(..., resume=error.resume)",
                    rows=tuple(state.rows),
                    resume=where,
                    pages=state.pages,
                    error=outcome.error,
                ) from None
            failed_in_a_row = 0
            state.rows.extend(got)
            state.pages += 1
            if pager is None or pager.style == "none" or _last(pager, outcome, got, position, size):
                break
            position = _next(pager, position, size)
    return Rows(endpoint.name, tidy(state.rows), skipped=state.skipped, pages=state.pages)


def _label(endpoint: Endpoint, pager: Any, position: int, lo: Any, hi: Any) -> str:
    where = f" {lo}..{hi}" if lo is not None else ""
    if pager is None or pager.style == "none":
        return f"{endpoint.route}{where}"
    return f"{endpoint.route}{where} {pager.page_param}={position}"


def _next(pager: Any, position: int, size: int) -> int:
    return position + (size if pager.style == "offset" else 1)


def _last(pager: Any, body: Any, got: list[Any], position: int, size: int) -> bool:
    if len(got) < size:
        return True
    if pager.total_at:
        total: Any = body
        for key in pager.total_at:
            total = total.get(key) if isinstance(total, Mapping) else None
        if isinstance(total, int):
            seen = position - 1 + len(got) if pager.style == "offset" else position * size
            return seen >= total
    return False


#: Fields that say when a row is, and which name what it is about: the provider's own ids
#: first, the ticker only when a row has no id (tickers are not unique: several coins share
#: one). An undeclared field the provider sends (kept in ``model_extra``) counts as well.
_WHEN = ("time", "date")
_WHO = ("id", "token_id", "symbol")


def _identity(row: Any) -> tuple[Any, ...] | None:
    when = next((v for v in (getattr(row, n, None) for n in _WHEN) if v is not None), None)
    who = next(
        ((n, v) for n, v in ((n, getattr(row, n, None)) for n in _WHO) if v is not None), None
    )
    if when is None and who is None:
        return None
    key = (when, who)
    try:
        hash(key)
    except TypeError:
        return None  # an id the provider sends as a list or object: keep the row, never drop it
    return key


def tidy(rows: Sequence[Any]) -> list[Any]:
    """Keep each row once (by its time and its provider id, or its symbol when it has no id)
    and sort timed rows by time, then symbol."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for row in rows:
        key = _identity(row)
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        out.append(row)
    if out and all(isinstance(getattr(r, "time", None), datetime) for r in out):
        out.sort(key=lambda r: (r.time, str(getattr(r, "symbol", "") or "")))
    return out
