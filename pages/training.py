"""Training Lab: train the small CBAM network live and watch its attention emerge."""

import time

import streamlit as st
import torch

from cbam import data, explore
from cbam.i18n import t
from cbam.train import PRESETS, train
from cbam.views import network as views
from ui import cache, page, show
from ui.state import lab

state = page.current()
st.title(t("ptr.title"))
st.markdown(t("ptr.intro"))

demo = PRESETS["demo"]


def variant(name: str) -> str:
    return t(f"variant.{name}")


def choose(name: str) -> None:
    lab().model = name

with st.form("training.form"):
    c1, c2, c3, c4 = st.columns(4)
    epochs = c1.number_input(t("ptr.epochs"), 1, 40, 6, key="training.epochs")
    steps = c2.number_input(t("ptr.steps"), 5, 200, 30, step=5, key="training.steps")
    batch = c3.select_slider(t("ptr.batch"), [16, 32, 64, 128], value=32, key="training.batch")
    lr = c4.select_slider(t("ptr.lr"), [1e-3, 2e-3, 3e-3, 5e-3, 1e-2], value=3e-3, key="training.lr")
    c5, c6, c7, c8 = st.columns(4)
    attention = c5.toggle(t("ptr.cbam"), value=True, key="training.attention",
                          help=t("ptr.cbam_help"))
    ratio = c6.select_slider(t("sidebar.ratio"), [1, 2, 4, 8, 16], value=demo.reduction_ratio, key="training.ratio")
    kernel = c7.select_slider(t("sidebar.kernel"), explore.kernel_sizes(11), value=demo.kernel_size, key="training.kernel")
    arrangement = c8.selectbox(t("ptr.arrangement"), ["channel-spatial", "spatial-channel", "parallel"], key="training.arrangement",
                               format_func={a: variant(a) for a in ("channel-spatial", "spatial-channel", "parallel")}.get)
    c9, c10, c11 = st.columns(3)
    seed = c9.number_input(t("ptr.seed"), 0, 10_000, 0, key="training.seed")
    watch = c11.selectbox(t("ptr.watch"), [0, 1, 2, 3], format_func=lambda i: f"stages.{i}.cbam", key="training.watch")
    device = c10.selectbox(t("ptr.device"), explore.available_devices(), index=explore.available_devices().index(state.device),
                           key="training.device", format_func=str.upper)
    start = st.form_submit_button(t("ptr.start"), type="primary")

config = demo.replace(preset="training-lab", epochs=int(epochs), steps_per_epoch=int(steps), batch_size=int(batch),
                      lr=float(lr), attention=attention, reduction_ratio=int(ratio), kernel_size=int(kernel),
                      arrangement=arrangement, seed=int(seed), device=device)
st.caption(t("ptr.caption", steps=config.total_steps, batch=config.batch_size, size=config.image_size))

watch_images, watch_labels, watch_masks = data.make_batch(4, seed=data.EVAL_SEED, size=config.image_size)
watch_pixels = data.denormalize(watch_images)

if start:
    # Any widget event stops a running script at its next Streamlit call, here the end of an epoch;
    # the model of the last finished epoch is already kept for the session.
    st.button(t("ptr.stop"), key="training.stop", help=t("ptr.stop_help"))
    progress = st.progress(0.0, text=t("ptr.starting"))
    curves, masks_view = st.empty(), st.empty()
    history: list[dict] = []
    run_name = cache.new_session_model_name()

    def on_epoch(epoch: int, loss: float, accuracy: float, model: torch.nn.Module) -> None:
        history.append({"epoch": epoch, "loss": loss, "accuracy": accuracy})
        # keep what has been learned so far, in case the run is stopped before the end
        cache.keep_session_model(run_name, model, config, history, finished=False)
        progress.progress(epoch / config.epochs, text=t("ptr.epoch", epoch=epoch, epochs=config.epochs, loss=loss,
                                                         acc=accuracy))
        with curves.container():
            show.chart(views.training_curves(history), key=f"training.curves.{epoch}", download=False)
        if attention:
            run = explore.run_network(model, watch_images, config.device, keep=("spatial_mask",))
            block = f"stages.{watch}.cbam"
            masks = {t("ptr.image", i=i, name=t(f"shape.{data.CLASS_NAMES[int(watch_labels[i])]}")): run.traces[block].spatial_mask[i, 0]
                     for i in range(len(watch_pixels))}
            with masks_view.container():
                st.markdown(t("ptr.masks", block=block, epoch=epoch))
                for column, picture in zip(st.columns(len(masks)), views.masks_on_images(
                        list(watch_pixels), list(masks.values()), list(masks), alpha=0.55)):
                    with column:
                        show.picture(picture)

    started = time.perf_counter()
    model, result = train(config, on_epoch=on_epoch, progress=False)
    cache.keep_session_model(run_name, model, config, history, finished=True)
    progress.progress(1.0, text=t("ptr.done", s=time.perf_counter() - started))
    st.success(t("ptr.finished", title=lab().session_models[run_name][1].title))
    st.button(t("ptr.explore"), key="training.use", on_click=choose, args=(run_name,))

trained = lab().session_models
if trained and not start:
    st.subheader(t("ptr.trained"))
    for _, card in trained.values():
        st.markdown(f"- **{card.title}** — {card.description}")
    st.caption(t("ptr.choose"))
