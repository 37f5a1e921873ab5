"""The data calls of both shells: typed endpoints, pagination, the unified calls and batches.

:class:`DataCalls` and :class:`AsyncDataCalls` are thin: each drives the sans-I/O parts
(:mod:`coinguard._endpoints`, :mod:`coinguard._paging`, :mod:`coinguard._unified`,
:mod:`coinguard._batch`) with the shell's own ``request``, so every page and batch item goes
through the one client: its keys, quota and retries.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import anyio

from ._batch import BatchResult, Checkpoint, check_workers, item_keys
from ._exceptions import CoinguardError, ConfigurationError
from ._flow import Base
from ._paging import Failed, OnError, Resume, Rows, tidy
from ._progress import Progress
from ._unified import Fetch

__all__ = ["AsyncDataCalls", "DataCalls"]

T = TypeVar("T")


def _batch_plan(
    items: Iterable[Any],
    key: Callable[[Any], str] | None,
    checkpoint: str | os.PathLike[str] | None,
    workers: int,
) -> tuple[list[Any], list[str], Checkpoint | None, list[Any], list[int]]:
    """Items, their keys, the checkpoint, results so far (from it) and the indexes to fetch."""
    check_workers(workers)
    items = list(items)
    keys = item_keys(items, key)
    store = Checkpoint(checkpoint) if checkpoint is not None else None
    results: list[Any] = [None] * len(items)
    todo = []
    for index, name in enumerate(keys):
        if store is not None and name in store.done:
            results[index] = store.done[name]
        else:
            todo.append(index)
    return items, keys, store, results, todo


def _settle(
    future: Future[Any],
    index: int,
    keys: list[str],
    store: Checkpoint | None,
    results: list[Any],
    errors: dict[int, BaseException],
    *,
    quiet: bool = False,
) -> None:
    """Record one finished item: its result (and checkpoint line), or its error."""
    try:
        value = future.result()
    except Exception as exc:
        errors[index] = exc
        return
    except BaseException:
        if quiet:
            return
        raise
    results[index] = value
    if store is not None:
        try:
            store.add(keys[index], value)
        except ConfigurationError as exc:  # a result with no JSON form: that item's error
            errors[index] = exc


class DataCalls(Base):
    """Typed endpoints, pagination, unified calls and batches for :class:`coinguard.Client`."""

    request: Callable[..., Any]  # the shell's own

    def call(self, endpoint: str, /, **params: Any) -> list[Any]:
        """Call the typed endpoint ``endpoint`` once; return its rows as validated models.

        One request, one page: :meth:`paginate` walks every page and time range.

        >>> client.call("price", symbol="BTC,ETH")[0].price  # doctest: +SKIP
        91234.5
        """
        ep, path, query = self._typed(endpoint, params)
        return ep.parse(self.request(ep.method, path, params=query))

    def paginate(
        self,
        endpoint: str,
        /,
        *,
        start: date | datetime | str | None = None,
        end: date | datetime | str | None = None,
        span: timedelta | None = None,
        limit: int | None = None,
        on_error: OnError = "raise",
        progress: bool | None = None,
        resume: Resume | None = None,
        **params: Any,
    ) -> Rows:
        """Fetch every page of ``endpoint`` (and every chunk of ``start``..``end``).

        The quota paces each page. A page that still fails after the client's retries raises
        :class:`PaginationError` with the rows so far and ``resume`` (pass it back as
        ``resume=``); ``on_error="skip"`` records it in ``Rows.skipped`` instead. Rows are
        de-duplicated and, when timed, sorted by time then symbol.

        >>> rows = client.paginate("daily_ohlcv", symbol="BTC,ETH",  # doctest: +SKIP
        ...                        start="2026-08-01", end="2026-10-29")
        >>> len(rows), rows.complete  # doctest: +SKIP
        (180, True)
        """
        ep, walker = self._paging(
            endpoint, params, start=start, end=end, span=span, limit=limit,
            on_error=on_error, resume=resume,
        )  # fmt: skip
        answer: Any = None
        with self._progress(progress, ep.name) as bar:
            while True:
                try:
                    page = walker.send(answer)
                except StopIteration as done:
                    rows: Rows = done.value
                    return rows
                try:
                    answer = self.request(ep.method, page.path, params=page.params)
                except CoinguardError as exc:
                    answer = Failed(exc)
                bar.page()

    def prices(
        self, symbols: str | Sequence[str], /, *, mapping: Mapping[str, str] | None = None
    ) -> Rows:
        """Current USD prices of ``symbols``, as :class:`Price` rows, whatever the provider.

        ``mapping`` adds symbol -> provider id entries to :attr:`symbol_map`.

        >>> [p.symbol for p in client.prices(["BTC", "ETH"])]  # doctest: +SKIP
        ['BTC', 'ETH']
        """
        return self._unified("prices", self._adapter().price_fetches(symbols, mapping), False)

    def ohlcv(
        self,
        symbols: str | Sequence[str],
        /,
        *,
        interval: str = "1d",
        start: date | datetime | str,
        end: date | datetime | str | None = None,
        mapping: Mapping[str, str] | None = None,
        progress: bool | None = None,
    ) -> Rows:
        """OHLCV :class:`Candle` rows of ``symbols`` from ``start`` to ``end`` (inclusive UTC
        days; today when ``end`` is None), every page fetched, the same for every provider.

        >>> client.ohlcv("BTC", start="2026-11-01", end="2026-11-07").df.close  # doctest: +SKIP
        """
        fetches = self._unified_ohlcv(symbols, interval, start, end, mapping)
        return self._unified("ohlcv", fetches, progress)

    def _unified(self, name: str, fetches: list[Fetch], progress: bool | None) -> Rows:
        rows: list[Any] = []
        pages = 0
        for fetch in fetches:
            if fetch.paginate:
                got: Sequence[Any] = self.paginate(
                    fetch.endpoint, start=fetch.start, end=fetch.end, progress=progress,
                    **fetch.params,
                )  # fmt: skip
            else:
                got = self.call(fetch.endpoint, **fetch.params)
            rows.extend(fetch.convert(got))
            pages += got.pages if isinstance(got, Rows) else 1
        return Rows(name, tidy(rows) if name == "ohlcv" else rows, pages=pages)

    def batch(
        self,
        items: Iterable[T],
        fetch: Callable[[T], Any],
        /,
        *,
        workers: int = 8,
        checkpoint: str | os.PathLike[str] | None = None,
        key: Callable[[T], str] | None = None,
        progress: bool | None = None,
    ) -> BatchResult:
        """Run ``fetch(item)`` for every item on ``workers`` threads; the quota paces them all.

        Results come back in input order; an item whose ``fetch`` raised is None in the
        results and its exception is in ``errors``. With ``checkpoint`` (a file path), each
        finished item is recorded at once, and a re-run after a crash skips it (no request,
        no credit). ``key`` names an item in the checkpoint (``str(item)`` by default).

        >>> def candles(symbol):  # doctest: +SKIP
        ...     return client.ohlcv(symbol, start="2026-11-01")
        >>> done = client.batch(symbols, candles, checkpoint="ohlcv.jsonl")  # doctest: +SKIP
        >>> done.ok, done.df.shape  # doctest: +SKIP
        (True, (14500, 7))
        """
        items, keys, store, results, todo = _batch_plan(items, key, checkpoint, workers)
        errors: dict[int, BaseException] = {}
        with self._progress(progress, "batch", len(items)) as bar:
            bar.advance(len(items) - len(todo))
            pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="coinguard-batch")
            futures = {pool.submit(fetch, items[i]): i for i in todo}
            try:
                for future in as_completed(futures):
                    _settle(future, futures[future], keys, store, results, errors)
                    bar.page()
            except BaseException:
                # a crash (Ctrl+C, a worker's SystemExit): start nothing new, and keep what
                # the running items fetch, so a re-run spends nothing on them again
                for future in futures:
                    future.cancel()
                pool.shutdown(wait=True)
                for future, index in futures.items():
                    if future.done() and not future.cancelled() and results[index] is None:
                        _settle(future, index, keys, store, results, errors, quiet=True)
                raise
            finally:
                pool.shutdown(wait=True)
        return BatchResult(items, results, errors, len(items) - len(todo))


class AsyncDataCalls(Base):
    """The same for :class:`coinguard.AsyncClient`, awaiting its ``request``."""

    request: Callable[..., Awaitable[Any]]  # the shell's own

    async def call(self, endpoint: str, /, **params: Any) -> list[Any]:
        """Call the typed endpoint ``endpoint`` once (see :meth:`Client.call`)."""
        ep, path, query = self._typed(endpoint, params)
        return ep.parse(await self.request(ep.method, path, params=query))

    async def paginate(
        self,
        endpoint: str,
        /,
        *,
        start: date | datetime | str | None = None,
        end: date | datetime | str | None = None,
        span: timedelta | None = None,
        limit: int | None = None,
        on_error: OnError = "raise",
        progress: bool | None = None,
        resume: Resume | None = None,
        **params: Any,
    ) -> Rows:
        """Fetch every page of ``endpoint`` (see :meth:`Client.paginate`)."""
        ep, walker = self._paging(
            endpoint, params, start=start, end=end, span=span, limit=limit,
            on_error=on_error, resume=resume,
        )  # fmt: skip
        answer: Any = None
        with self._progress(progress, ep.name) as bar:
            while True:
                try:
                    page = walker.send(answer)
                except StopIteration as done:
                    rows: Rows = done.value
                    return rows
                try:
                    answer = await self.request(ep.method, page.path, params=page.params)
                except CoinguardError as exc:
                    answer = Failed(exc)
                bar.page()

    async def prices(
        self, symbols: str | Sequence[str], /, *, mapping: Mapping[str, str] | None = None
    ) -> Rows:
        """Current USD prices of ``symbols`` (see :meth:`Client.prices`)."""
        return await self._unified("prices", self._adapter().price_fetches(symbols, mapping), False)

    async def ohlcv(
        self,
        symbols: str | Sequence[str],
        /,
        *,
        interval: str = "1d",
        start: date | datetime | str,
        end: date | datetime | str | None = None,
        mapping: Mapping[str, str] | None = None,
        progress: bool | None = None,
    ) -> Rows:
        """OHLCV candles of ``symbols`` (see :meth:`Client.ohlcv`)."""
        fetches = self._unified_ohlcv(symbols, interval, start, end, mapping)
        return await self._unified("ohlcv", fetches, progress)

    async def _unified(self, name: str, fetches: list[Fetch], progress: bool | None) -> Rows:
        rows: list[Any] = []
        pages = 0
        for fetch in fetches:
            if fetch.paginate:
                got: Sequence[Any] = await self.paginate(
                    fetch.endpoint, start=fetch.start, end=fetch.end, progress=progress,
                    **fetch.params,
                )  # fmt: skip
            else:
                got = await self.call(fetch.endpoint, **fetch.params)
            rows.extend(fetch.convert(got))
            pages += got.pages if isinstance(got, Rows) else 1
        return Rows(name, tidy(rows) if name == "ohlcv" else rows, pages=pages)

    async def batch(
        self,
        items: Iterable[T],
        fetch: Callable[[T], Awaitable[Any]],
        /,
        *,
        workers: int = 8,
        checkpoint: str | os.PathLike[str] | None = None,
        key: Callable[[T], str] | None = None,
        progress: bool | None = None,
    ) -> BatchResult:
        """Await ``fetch(item)`` for every item, ``workers`` at a time (see
        :meth:`Client.batch`)."""
        items, keys, store, results, todo = _batch_plan(items, key, checkpoint, workers)
        errors: dict[int, BaseException] = {}
        limiter = anyio.CapacityLimiter(workers)

        async def one(index: int, bar: Progress) -> None:
            async with limiter:
                try:
                    value = await fetch(items[index])
                except Exception as exc:
                    errors[index] = exc
                else:
                    results[index] = value
                    if store is not None:  # file I/O: off the event loop
                        try:
                            await anyio.to_thread.run_sync(store.add, keys[index], value)
                        except ConfigurationError as exc:
                            errors[index] = exc
                bar.page()

        with self._progress(progress, "batch", len(items)) as bar:
            bar.advance(len(items) - len(todo))
            async with anyio.create_task_group() as group:
                for index in todo:
                    group.start_soon(one, index, bar)
        return BatchResult(items, results, errors, len(items) - len(todo))
