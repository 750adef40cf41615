"""A small Streamlit client that speaks the browser's websocket protocol, for load tests without browsers.

A browser tab of a Streamlit app is a websocket to ``/_stcore/stream`` carrying protobufs: the tab
sends ``BackMsg`` (``rerun_script`` with a ``ClientState``: the page, the query string and the
state of every widget it shows) and receives ``ForwardMsg`` (``new_session`` when a script run
starts, ``delta`` for each element the run draws, ``script_finished`` when it ends, plus
``navigation``, ``page_info_changed``, ...). ``StudentClient`` plays that part with the
``websockets`` library, so one process can hold dozens of sessions on a small machine, where as
many headless browsers would take the CPU the server is being measured with.

    client = StudentClient("http://127.0.0.1:8501")
    await client.connect()
    run = await client.open("channel")                      # like opening http://…/channel
    run = await client.set_widget("Reduction ratio r", "8")  # a select_slider takes an option string
    run = await client.upload("Image", "me.png", png_bytes)   # a file_uploader
    run.elapsed, run.texts(), run.errors()
    await client.close()

What it does as the Streamlit frontend (1.67) does:

* **Widget states.** It keeps the value of every widget of the last run it understands (sliders,
  select sliders, select boxes, radios, checkboxes and toggles, text inputs, file uploaders),
  taking the server's value when the element says ``set_value`` (the script set it through
  ``st.session_state``) or when the widget is new, and sends them all with each rerun; a widget
  missing at the end of a full run is forgotten. The other kinds are not sent, so the server uses
  their last value. A button's click is sent once, with the rerun it causes.
* **Uploads.** ``upload`` asks for an upload URL (``file_urls_request`` → ``file_urls_response``),
  PUTs the file as multipart form data with the XSRF token (header ``X-Xsrftoken`` equal to the
  ``_streamlit_xsrf`` cookie from ``/_stcore/health``), then reruns with the uploader's
  ``file_uploader_state_value`` naming the file id.
* **Pages.** ``open(page)`` reruns with the page's URL path as ``page_name`` (as a freshly loaded
  URL does) and, once the server's ``navigation`` message has listed the pages, its
  ``page_script_hash`` (as a click in the navigation does), with an empty query string.
* **Message cache.** The server replaces a large element by a ``ref_hash`` reference only when
  the client lists that hash in ``ClientState.cached_message_hashes``; this client lists none, so
  every element comes in full. A ``ref_hash`` arriving anyway is reported as a protocol error.

A step's ``elapsed`` runs from sending it (for an upload: from asking for the upload URL) to the
``script_finished`` that ends its run; a run that ends with ``st.rerun()`` (``FINISHED_EARLY_FOR_RERUN``)
is followed to the run after it. Media (``/media/…`` images) are not part of a run; ``fetch_media``
downloads a run's images the way a browser would, separately.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass, field

import requests
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.Common_pb2 import FileURLs, UploadedFileInfo
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.Slider_pb2 import Slider
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect as ws_connect

WIDGET_KINDS = ("slider", "selectbox", "radio", "checkbox", "text_input", "file_uploader", "button",
                "multiselect", "number_input", "text_area", "camera_input", "date_input", "time_input",
                "color_picker", "button_group", "chat_input", "download_button", "audio_input")
FINAL = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_WITH_COMPILE_ERROR,
         ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}


class ProtocolError(RuntimeError):
    """The server did something this client does not understand, or went away."""


@dataclass
class Run:
    """One step: the elements its script run(s) drew, by delta path, and how long it took."""

    elapsed: float = 0.0
    elements: dict[tuple[int, ...], Element] = field(default_factory=dict)
    status: int | None = None
    reruns: int = 0  # runs that ended with st.rerun() before the final one
    compile_errors: list[str] = field(default_factory=list)

    def ordered(self) -> list[Element]:
        return [self.elements[path] for path in sorted(self.elements)]

    def texts(self) -> list[str]:
        """Every text shown: markdown (captions too), headings, text, alerts, metrics, image captions, code."""
        out = []
        for el in self.ordered():
            kind = el.WhichOneof("type")
            if kind in ("markdown", "heading", "text", "alert", "code"):
                out.append(getattr(el, kind).body if kind != "code" else el.code.code_text)
            elif kind == "metric":
                out.append(f"{el.metric.label}: {el.metric.body}")
            elif kind == "imgs":
                out.extend(img.caption for img in el.imgs.imgs if img.caption)
        return out

    def images(self) -> list[tuple[str, str]]:
        """(url, caption) of every image (st.image) of the run."""
        return [(img.url, img.caption) for el in self.ordered() if el.WhichOneof("type") == "imgs"
                for img in el.imgs.imgs]

    def image_captions(self) -> list[str]:
        return [caption for _, caption in self.images()]

    def image_urls(self) -> list[str]:
        return [url for url, _ in self.images()]

    def widgets(self) -> dict[str, tuple[str, object]]:
        """Label → (kind, proto) of each widget of the run; the first of two with the same label wins."""
        found: dict[str, tuple[str, object]] = {}
        for el in self.ordered():
            kind = el.WhichOneof("type")
            if kind in WIDGET_KINDS:
                proto = getattr(el, kind)
                found.setdefault(proto.label, (kind, proto))
        return found

    def errors(self) -> list[str]:
        """Tracebacks (st.exception or an uncaught error), error alerts and script compile errors."""
        out = list(self.compile_errors)
        for el in self.ordered():
            kind = el.WhichOneof("type")
            if kind == "exception":
                out.append(f"exception {el.exception.type}: {el.exception.message}")
            elif kind == "alert" and el.alert.format == el.alert.ERROR:
                out.append(f"error alert: {el.alert.body}")
        if self.status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR and not self.compile_errors:
            out.append("script finished with a compile error")
        return out


def widget_state(wid: str, kind: str, proto, value=None) -> WidgetState | None:
    """The WidgetState the frontend would send for ``proto``: ``value`` if given, else the
    element's own value (``set_value``) or default. None for kinds this client does not hold."""
    state = WidgetState(id=wid)
    own = value is None
    if kind == "slider" and proto.type == Slider.SELECT_SLIDER:  # values are the options' strings
        if own:
            value = list(proto.raw_value) if proto.set_value else [proto.options[int(i)] for i in proto.default]
        values = [str(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
        unknown = [v for v in values if v not in proto.options]
        if unknown:
            raise ValueError(f"{proto.label!r} has no option {unknown[0]!r}; its options are {list(proto.options)}")
        state.string_array_value.data[:] = values
    elif kind == "slider":
        if own:
            value = list(proto.value) if proto.set_value else list(proto.default)
        state.double_array_value.data[:] = [float(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
    elif kind in ("selectbox", "radio"):  # the option's string, as shown
        if own:
            if proto.HasField("raw_value"):
                value = proto.raw_value
            elif proto.HasField("default") and proto.options:
                value = proto.options[proto.default]
            else:
                return None
        if str(value) not in proto.options and not getattr(proto, "accept_new_options", False):
            raise ValueError(f"{proto.label!r} has no option {value!r}; its options are {list(proto.options)}")
        state.string_value = str(value)
    elif kind == "button":  # a click: sent once, with the rerun it causes
        if own:
            return None
        state.trigger_value = bool(value)
    elif kind == "checkbox":
        state.bool_value = bool((proto.value if proto.set_value else proto.default) if own else value)
    elif kind == "text_input":
        if own:
            value = proto.value if proto.set_value and proto.HasField("value") else (
                proto.default if proto.HasField("default") else None)
            if value is None:
                return None
        state.string_value = str(value)
    else:
        return None
    return state


class StudentClient:
    """One browser tab of a Streamlit app, over the websocket protocol (see the module docstring)."""

    _ids = itertools.count(1)

    def __init__(self, base_url: str, step_timeout: float = 180.0):
        self.base_url = base_url.rstrip("/")
        self.step_timeout = step_timeout
        self.session_id = ""
        self.pages: dict[str, str] = {}  # url path ("channel") → page_script_hash
        self.page_script_hash = ""
        self.query_string = ""
        self.last_run: Run | None = None
        self._widget_states: dict[str, WidgetState] = {}
        self._http = requests.Session()
        self._http.trust_env = False  # never through a proxy: the server is local
        self._ws = None
        self._reader: asyncio.Task | None = None
        self._run: Run | None = None  # the step being collected
        self._run_started = False
        self._run_done: asyncio.Future | None = None
        self._url_requests: dict[str, asyncio.Future] = {}
        self._failure: BaseException | None = None
        self.protocol_errors: list[str] = []

    # --- connection -----------------------------------------------------------------------

    async def connect(self) -> None:
        """Take the XSRF cookie (as loading the page does) and open the websocket."""
        response = await asyncio.to_thread(self._http.get, f"{self.base_url}/_stcore/health", timeout=30)
        response.raise_for_status()
        ws_url = "ws" + self.base_url[len("http"):] + "/_stcore/stream"
        self._ws = await ws_connect(ws_url, subprotocols=["streamlit"], max_size=None, proxy=None,
                                    open_timeout=30, ping_interval=None)
        self._reader = asyncio.create_task(self._read(), name=f"st-client-{next(self._ids)}")

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
        self._http.close()

    async def __aenter__(self) -> StudentClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # --- the three steps ------------------------------------------------------------------

    async def open(self, page: str = "") -> Run:
        """Go to a page by its URL path ("" for the default page), as a link or the navigation would."""
        page = page.strip("/")
        self.query_string = ""
        return await self._rerun(page_script_hash=self.pages.get(page, ""), page_name=page)

    async def set_widget(self, label: str, value) -> Run:
        """Give the widget labelled ``label`` (in the last run) a new value and rerun, as a user's change does."""
        kind, proto = self.widget(label)
        state = widget_state(proto.id, kind, proto, value)
        if state is None:
            raise ValueError(f"{label!r} is a {kind}; this client cannot set that kind of widget")
        if kind == "button":
            return await self._rerun(clicks=[state])
        self._widget_states[proto.id] = state
        return await self._rerun()

    async def upload(self, label: str, filename: str, data: bytes, mime: str = "image/png") -> Run:
        """Put ``data`` in the file uploader labelled ``label`` and rerun (timed from the upload's start)."""
        kind, proto = self.widget(label)
        if kind != "file_uploader":
            raise ValueError(f"{label!r} is a {kind}, not a file uploader")
        start = time.perf_counter()
        request_id = uuid.uuid4().hex
        future = self._url_requests[request_id] = asyncio.get_running_loop().create_future()
        msg = BackMsg()
        msg.file_urls_request.request_id = request_id
        msg.file_urls_request.file_names.append(filename)
        msg.file_urls_request.session_id = self.session_id
        await self._send(msg)
        response = await asyncio.wait_for(future, self.step_timeout)
        if response.error_msg or not response.file_urls:
            raise ProtocolError(f"no upload URL: {response.error_msg!r}")
        urls: FileURLs = response.file_urls[0]
        await asyncio.to_thread(self._put_file, urls.upload_url, filename, data, mime)
        state = WidgetState(id=proto.id)
        state.file_uploader_state_value.uploaded_file_info.append(
            UploadedFileInfo(file_id=urls.file_id, name=filename, size=len(data), file_urls=urls))
        self._widget_states[proto.id] = state
        run = await self._rerun()
        run.elapsed = time.perf_counter() - start
        return run

    # --- reading the last run -------------------------------------------------------------

    def widget(self, label: str) -> tuple[str, object]:
        """(kind, proto) of the widget labelled ``label`` in the last run."""
        widgets = self.last_run.widgets() if self.last_run else {}
        if label not in widgets:
            raise KeyError(f"no widget labelled {label!r} in the last run; there are {sorted(widgets)}")
        return widgets[label]

    def value(self, label: str):
        """The value this client holds (and sends) for the widget labelled ``label``, as a Python value."""
        _, proto = self.widget(label)
        state = self._widget_states.get(proto.id)
        if state is None:
            return None
        kind = state.WhichOneof("value")
        data = getattr(state, kind)
        return list(data.data) if hasattr(data, "data") else data

    def get(self, url: str) -> bytes:
        """GET a server path such as a run's image URL ("/media/…"). Blocking: call it in a thread."""
        response = self._http.get(url if url.startswith("http") else self.base_url + url, timeout=60)
        response.raise_for_status()
        return response.content

    def fetch_media(self, run: Run, seen: set[str] | None = None) -> list[str]:
        """GET the run's images (those not in ``seen``, which is updated), as a browser would;
        returns the failures. Blocking: call it in a thread."""
        failures = []
        for url in run.image_urls():
            if seen is not None and url in seen:
                continue
            full = url if url.startswith("http") or url.startswith("data:") else self.base_url + url
            if full.startswith("data:"):
                continue
            try:
                response = self._http.get(full, timeout=60)
                if response.status_code != 200:
                    failures.append(f"GET {url}: HTTP {response.status_code}")
                elif seen is not None:
                    seen.add(url)
            except requests.RequestException as error:
                failures.append(f"GET {url}: {error}")
        return failures

    # --- plumbing -------------------------------------------------------------------------

    def _put_file(self, upload_url: str, filename: str, data: bytes, mime: str) -> None:
        token = self._http.cookies.get("_streamlit_xsrf")
        headers = {"X-Xsrftoken": token} if token else {}
        url = upload_url if upload_url.startswith("http") else self.base_url + upload_url
        response = self._http.put(url, files={"file": (filename, data, mime)}, headers=headers, timeout=60)
        if response.status_code not in (200, 204):
            raise ProtocolError(f"upload of {filename} failed: HTTP {response.status_code} {response.text[:200]}")

    async def _send(self, msg: BackMsg) -> None:
        if self._failure is not None:
            raise ProtocolError(f"the connection is gone: {self._failure!r}")
        await self._ws.send(msg.SerializeToString())

    async def _rerun(self, page_script_hash: str | None = None, page_name: str = "",
                     clicks: list[WidgetState] = ()) -> Run:
        state = ClientState(query_string=self.query_string, page_name=page_name,
                            page_script_hash=self.page_script_hash if page_script_hash is None else page_script_hash)
        state.widget_states.widgets.extend([*self._widget_states.values(), *clicks])
        msg = BackMsg()
        msg.rerun_script.CopyFrom(state)
        self._run, self._run_started = Run(), False
        self._run_done = asyncio.get_running_loop().create_future()
        start = time.perf_counter()
        await self._send(msg)
        try:
            await asyncio.wait_for(asyncio.shield(self._run_done), self.step_timeout)
        except TimeoutError:
            raise TimeoutError(f"no script_finished within {self.step_timeout:.0f} s") from None
        run, self._run = self._run, None
        run.elapsed = time.perf_counter() - start
        self.last_run = run
        return run

    async def _read(self) -> None:
        try:
            async for data in self._ws:
                msg = ForwardMsg()
                msg.ParseFromString(data)
                self._handle(msg)
            raise ProtocolError("the server closed the websocket")
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # noqa: BLE001 - wake up whoever waits, with the cause
            self._failure = error
            waiting = [f for f in (self._run_done, *self._url_requests.values()) if f is not None and not f.done()]
            for future in waiting:
                future.set_exception(ProtocolError(f"connection lost: {error!r}"))

    def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        run = self._run
        if kind == "new_session":
            if msg.new_session.initialize.session_id:
                self.session_id = msg.new_session.initialize.session_id
            if msg.new_session.page_script_hash:
                self.page_script_hash = msg.new_session.page_script_hash
            if run is not None:
                if self._run_started:  # a run after st.rerun(): only its elements count
                    run.reruns += 1
                    run.elements.clear()
                self._run_started = True
        elif kind == "navigation":
            self.pages = {p.url_pathname: p.page_script_hash for p in msg.navigation.app_pages}
            self.page_script_hash = msg.navigation.page_script_hash or self.page_script_hash
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "delta":
            if msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                self._note_widget(element)
                if run is not None and self._run_started:
                    run.elements[tuple(msg.metadata.delta_path)] = element
        elif kind == "script_finished":
            if run is not None and self._run_started and msg.script_finished in FINAL:
                run.status = msg.script_finished
                if msg.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                    self._forget_widgets_not_in(run)
                if self._run_done is not None and not self._run_done.done():
                    self._run_done.set_result(None)
        elif kind == "session_event":
            if msg.session_event.HasField("script_compilation_exception") and run is not None:
                error = msg.session_event.script_compilation_exception
                run.compile_errors.append(f"compile error {error.type}: {error.message}")
        elif kind == "file_urls_response":
            future = self._url_requests.pop(msg.file_urls_response.response_id, None)
            if future is not None and not future.done():
                future.set_result(msg.file_urls_response)
        elif kind == "ref_hash":
            self.protocol_errors.append(f"unexpected ref_hash {msg.ref_hash} (this client caches nothing)")

    def _note_widget(self, element: Element) -> None:
        kind = element.WhichOneof("type")
        if kind not in WIDGET_KINDS:
            return
        proto = getattr(element, kind)
        if proto.id in self._widget_states and not getattr(proto, "set_value", False):
            return
        state = widget_state(proto.id, kind, proto)
        if state is not None:
            self._widget_states[proto.id] = state

    def _forget_widgets_not_in(self, run: Run) -> None:
        shown = {getattr(el, el.WhichOneof("type")).id for el in run.elements.values()
                 if el.WhichOneof("type") in WIDGET_KINDS}
        for wid in [w for w in self._widget_states if w not in shown]:
            del self._widget_states[wid]
