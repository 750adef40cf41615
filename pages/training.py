"""Training Lab: train the small CBAM network live and watch its attention emerge."""

import time

import streamlit as st
import torch

from cbam import data, explore
from cbam.train import PRESETS, train
from cbam.views import network as views
from ui import cache, page, show
from ui.state import lab

state = page.current()
st.title("Training Lab: watch attention emerge")
st.markdown(
    "Train the small CBAM network on the shapes task (the class is the shape of the red object) right here. After "
    "every epoch the loss and accuracy curves and the spatial masks of one CBAM block on four fixed held-out images "
    "are redrawn. Early on the masks carry little structure; as the network learns, the first blocks' masks gather "
    "on the red object (in the shipped demo model the first block's maximum lies on the target in 96% of held-out "
    "images). The result becomes a model you can explore on every page."
)

demo = PRESETS["demo"]


def choose(name: str) -> None:
    lab().model = name

with st.form("training.form"):
    c1, c2, c3, c4 = st.columns(4)
    epochs = c1.number_input("Epochs", 1, 40, 6, key="training.epochs")
    steps = c2.number_input("Steps per epoch", 5, 200, 30, step=5, key="training.steps")
    batch = c3.select_slider("Batch size", [16, 32, 64, 128], value=32, key="training.batch")
    lr = c4.select_slider("Learning rate", [1e-3, 2e-3, 3e-3, 5e-3, 1e-2], value=3e-3, key="training.lr")
    c5, c6, c7, c8 = st.columns(4)
    attention = c5.toggle("CBAM blocks", value=True, key="training.attention",
                          help="Off: the same network without attention (the baseline).")
    ratio = c6.select_slider("Reduction ratio r", [1, 2, 4, 8, 16], value=demo.reduction_ratio, key="training.ratio")
    kernel = c7.select_slider("Spatial kernel size k", explore.kernel_sizes(11), value=demo.kernel_size, key="training.kernel")
    arrangement = c8.selectbox("Arrangement", ["channel-spatial", "spatial-channel", "parallel"], key="training.arrangement")
    c9, c10, c11 = st.columns(3)
    seed = c9.number_input("Seed", 0, 10_000, 0, key="training.seed")
    watch = c11.selectbox("Block to watch", [0, 1, 2, 3], format_func=lambda i: f"stages.{i}.cbam", key="training.watch")
    device = c10.selectbox("Device", explore.available_devices(), index=explore.available_devices().index(state.device),
                           key="training.device", format_func=str.upper)
    start = st.form_submit_button("Start training", type="primary")

config = demo.replace(preset="training-lab", epochs=int(epochs), steps_per_epoch=int(steps), batch_size=int(batch),
                      lr=float(lr), attention=attention, reduction_ratio=int(ratio), kernel_size=int(kernel),
                      arrangement=arrangement, seed=int(seed), device=device)
st.caption(f"{config.total_steps} steps of {config.batch_size} images ({config.image_size} px), generated on the fly. "
           "Press “Stop training” (or change any control) to stop after the current epoch: the model trained so far is kept.")

watch_images, watch_labels, watch_masks = data.make_batch(4, seed=data.EVAL_SEED, size=config.image_size)
watch_pixels = data.denormalize(watch_images)

if start:
    # Any widget event stops a running script at its next Streamlit call, here the end of an epoch;
    # the model of the last finished epoch is already kept for the session.
    st.button("Stop training", key="training.stop", help="Stops after the current epoch; the model so far is kept.")
    progress = st.progress(0.0, text="Starting…")
    curves, masks_view = st.empty(), st.empty()
    history: list[dict] = []
    run_name = cache.new_session_model_name()

    def on_epoch(epoch: int, loss: float, accuracy: float, model: torch.nn.Module) -> None:
        history.append({"epoch": epoch, "loss": loss, "accuracy": accuracy})
        # keep what has been learned so far, in case the run is stopped before the end
        cache.keep_session_model(run_name, model, config, history, finished=False)
        progress.progress(epoch / config.epochs, text=f"Epoch {epoch}/{config.epochs}: loss {loss:.3f}, "
                                                       f"training accuracy {accuracy:.1%}")
        with curves.container():
            show.chart(views.training_curves(history), key=f"training.curves.{epoch}", download=False)
        if attention:
            run = explore.run_network(model, watch_images, config.device, keep=("spatial_mask",))
            block = f"stages.{watch}.cbam"
            masks = {f"image {i} ({data.CLASS_NAMES[int(watch_labels[i])]})": run.traces[block].spatial_mask[i, 0]
                     for i in range(len(watch_pixels))}
            with masks_view.container():
                st.markdown(f"**Spatial masks of {block} after epoch {epoch}**")
                for column, picture in zip(st.columns(len(masks)), views.masks_on_images(
                        list(watch_pixels), list(masks.values()), list(masks), alpha=0.55)):
                    with column:
                        show.picture(picture)

    started = time.perf_counter()
    model, result = train(config, on_epoch=on_epoch, progress=False)
    cache.keep_session_model(run_name, model, config, history, finished=True)
    progress.progress(1.0, text=f"Done in {time.perf_counter() - started:.0f} s.")
    st.success("Training finished. The model is now in the sidebar's Model list as "
               f"“{lab().session_models[run_name][1].title}”.")
    st.button("Explore this model on every page", key="training.use", on_click=choose, args=(run_name,))

trained = lab().session_models
if trained and not start:
    st.subheader("Trained in this session")
    for _, card in trained.values():
        st.markdown(f"- **{card.title}** — {card.description}")
    st.caption("Choose one in the sidebar's Model list to explore it on every page. They last as long as this browser session.")
