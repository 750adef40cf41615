"""benchmarks/st_client.py against a tiny Streamlit app (not CBAM Lab): read text, move sliders, switch
pages, upload a file, see a script error. One server for the module (about 3 s to start)."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import pytest
from streamlit_server import running_app

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from st_client import StudentClient  # noqa: E402

pytestmark = pytest.mark.slow

APP = '''
import streamlit as st

def home():
    st.title("Home page")
    r = st.sidebar.select_slider("Ratio r", [1, 2, 4, 8, 16], value=4)
    x = st.slider("Amount", 0, 10, 3)
    choice = st.sidebar.radio("Source", ["Sample", "Upload"])
    st.markdown(f"r is {r}, amount is {x}, source is {choice}")
    if choice == "Upload":
        f = st.sidebar.file_uploader("Image", type=["png", "bin"])
        if f is not None:
            st.session_state["name"] = f.name
            st.session_state["size"] = len(f.getvalue())
    if "name" in st.session_state:
        st.sidebar.caption(f"file {st.session_state['name']} of {st.session_state['size']} bytes")
    if st.button("Fail"):
        raise ValueError("boom")

def other():
    st.title("Other page")
    st.write("r seen from here:", st.session_state.get("seen", "none"))

st.navigation([st.Page(home, title="Home", url_path="home", default=True),
               st.Page(other, title="Other", url_path="other")]).run()
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_app")
    (folder / "app.py").write_text(textwrap.dedent(APP))
    with running_app("st-client-test.log", script=folder / "app.py") as app:
        yield app.url


def test_text_sliders_pages_upload_and_errors(server):
    async def scenario():
        async with StudentClient(server, step_timeout=30) as client:
            run = await client.open("home")
            assert run.status == 0 and run.elapsed > 0
            assert "Home page" in run.texts()
            assert "r is 4, amount is 3, source is Sample" in run.texts()
            assert client.session_id and set(client.pages) == {"", "other"}  # the default page's path is ""
            assert client.value("Ratio r") == ["4"]
            assert client.widget("Ratio r")[1].options == ["1", "2", "4", "8", "16"]

            run = await client.set_widget("Ratio r", "8")
            assert "r is 8, amount is 3, source is Sample" in run.texts()
            run = await client.set_widget("Amount", 7)
            assert "r is 8, amount is 7, source is Sample" in run.texts()  # the other widget kept its value
            with pytest.raises(ValueError, match="no option"):
                await client.set_widget("Ratio r", "3")

            run = await client.open("other")
            assert "Other page" in run.texts() and "Home page" not in run.texts()
            run = await client.open("home")
            assert "Home page" in run.texts()

            run = await client.set_widget("Source", "Upload")
            assert "Image" in run.widgets() and not any("file " in t for t in run.texts())
            run = await client.upload("Image", "student-01.png", b"\x89PNG fake bytes")
            assert "file student-01.png of 15 bytes" in run.texts()
            assert run.errors() == [] and client.protocol_errors == []

            run = await client.set_widget("Fail", True)
            assert any("ValueError" in e and "boom" in e for e in run.errors())

    asyncio.run(scenario())


def test_sessions_are_separate(server):
    async def one(name: str) -> list[str]:
        async with StudentClient(server, step_timeout=30) as client:
            await client.open("")
            await client.set_widget("Source", "Upload")
            run = await client.upload("Image", name, name.encode())
            return [t for t in run.texts() if t.startswith("file ")]

    async def both():
        return await asyncio.gather(one("student-01.bin"), one("student-02.bin"))

    first, second = asyncio.run(both())
    assert first == ["file student-01.bin of 14 bytes"]
    assert second == ["file student-02.bin of 14 bytes"]
