"""Build a network (an MLP or a CNN): the data, the network and optimizer controls, training curves."""
import streamlit as st

import lab
import tj
from tj import charts
from tj.cnn import POOLINGS
from tj.data import DATASETS
from tj.model import ACTIVATIONS, INITS
from tj.networks import family
from tj.train import OPTIMIZERS, SCHEDULES
from tj.validate import validate

st.title("Build a network")
exp = lab.current()
data = tj.load(exp.data)

side = int(data.x_train.shape[1] ** 0.5)
st.subheader("The data: " + ("UCI 8×8 handwritten digits" if exp.data.dataset == "digits" else "MNIST, 28×28"))
c1, c2, c3 = st.columns(3)
c1.metric("training images", f"{len(data.y_train):,}")
c2.metric("test images", f"{len(data.y_test):,}")
c3.metric("pixels per image", f"{side} × {side}", help="pixel values scaled to [0, 1]")
st.altair_chart(charts.digits_chart(data.x_train[:20].numpy(), [f"#{i}: label {int(y)}" for i, y in
                                                                  enumerate(data.y_train[:20])]))

st.subheader("The network and its training")
advanced = not lab.classroom()
fam = st.radio("network family", ("mlp", "cnn"), index=("mlp", "cnn").index(family(exp.model)), horizontal=True,
               format_func={"mlp": "MLP (dense layers)", "cnn": "CNN (convolutions, then dense layers)"}.get,
               key="family_picker")
with st.form("config"):
    a, b, c = st.columns(3)
    raw = {"family": fam}
    if fam == "mlp":
        widths = exp.model.widths if family(exp.model) == "mlp" else (64,)
        raw["widths"] = a.text_input("hidden widths (comma-separated)", ", ".join(map(str, widths)),
                                     help="64 is the paper's; '32, 16' makes two hidden layers")
        raw["dataset"] = "digits"
    else:
        model = exp.model if family(exp.model) == "cnn" else tj.preset("cnn").model
        convs = ", ".join(f"{v.channels}x{v.kernel} {v.padding.lower()} pool{v.pool}" for v in model.convs)
        raw["convs"] = a.text_input("convolution layers", convs,
                                    help="channels × kernel, SAME or VALID padding, pooling window; "
                                         "LeNet-5's are '6x5 same pool2, 16x5 valid pool2'")
        raw["dense"] = a.text_input("dense widths before the 10 outputs", ", ".join(map(str, model.dense)) or "none",
                                    help="'none' puts the 10 outputs right after the convolutions")
        raw["pooling"] = a.selectbox("pooling", POOLINGS, index=POOLINGS.index(model.pooling))
        raw["dataset"] = a.selectbox("dataset", DATASETS, index=DATASETS.index(exp.data.dataset),
                                     format_func={"digits": "8×8 digits", "mnist": "MNIST 28×28"}.get)
    if advanced:
        raw["activation"] = a.selectbox("activation", ACTIVATIONS, index=ACTIVATIONS.index(exp.model.activation))
        raw["init"] = a.selectbox("initialisation", INITS, index=INITS.index(exp.model.init))
        raw["optimizer"] = b.selectbox("optimizer", OPTIMIZERS, index=OPTIMIZERS.index(exp.train.optimizer),
                                       format_func={"sgd": "SGD + momentum", "adam": "Adam"}.get)
    raw["lr"] = b.number_input("learning rate", value=float(exp.train.lr), min_value=0.0, format="%g")
    if advanced:
        raw["momentum"] = b.number_input("momentum (SGD)", value=float(exp.train.momentum), min_value=0.0,
                                         max_value=0.999)
        raw["schedule"] = b.selectbox("schedule", SCHEDULES, index=SCHEDULES.index(exp.train.schedule))
    raw["epochs"] = c.number_input("epochs", value=int(exp.train.epochs), min_value=0, step=1)  # 0: refused in words
    if advanced:
        raw["batch_size"] = c.number_input("batch size", value=int(exp.train.batch_size), min_value=0, step=1)
    raw["seed"] = c.number_input("seed", value=int(exp.seed), min_value=0, step=1)
    submitted = st.form_submit_button("Train", type="primary")

if submitted:
    checked = validate(raw, lab.limits(), base=exp)
    if not checked.ok:
        st.error("**Not trained:** " + " ".join(checked.errors) + " The settings above were not used.")
        st.stop()
    if checked.experiment != exp:
        lab.set_current(checked.experiment)
        lab.trained(checked.experiment)
        st.rerun()  # the sidebar and the URL show the new experiment; its training is cached by now

n = exp.model.n_params
mem = tj.memory_estimate(exp)
est = lab.estimates(exp)
c1, c2, c3 = st.columns(3)
c1.metric("parameters P", f"{n:,}")
c2.metric(f"J will be ({lab.megabytes(mem['jacobian'])})", f"{n:,} × {n:,}")
c3.metric("J will take about", f"{est['jacobian']:.0f} s", help="estimated from a short timed probe on this server")
over = lab.check(exp)
if not over.ok:
    st.warning("**J of this network is over this server's limits** (training still works): " + over.message)

if submitted or lab.have("train", exp) is not None:
    result = lab.trained(exp)
    if not result.ok:
        step, epoch = result.diverged_at
        st.error(f"**Training diverged** at step {step} (epoch {epoch + 1}): the loss became NaN or infinite. "
                 "The learning rate is too large for this network. Lower it (the paper uses 0.1 with momentum 0.9, "
                 "3e-3 for Adam) or use the cosine schedule.")
        st.stop()
    m = result.metrics
    st.altair_chart(charts.curves_chart(m))
    st.markdown(f"Final test loss **{m.test_loss[-1]:.4f}** nats, test accuracy **{100 * m.test_acc[-1]:.1f} %** "
                f"(before training: {m.test_loss[0]:.3f} nats).")
    if m.test_loss[-1] >= m.test_loss[0]:
        st.warning("The network did not learn: the test loss did not go down. Try a smaller learning rate.")
    logits = tj.forward(exp.model, result.theta_final, data.x_test[:20])
    probs = logits.softmax(1)
    titles = [f"pred {int(p)} ({100 * probs[i, p]:.0f}%) · true {int(y)}"
              for i, (p, y) in enumerate(zip(logits.argmax(1), data.y_test[:20]))]
    st.altair_chart(charts.digits_chart(data.x_test[:20].numpy(), titles, columns=5, size=64))
    st.page_link("views/jacobian.py", label="Next: compute the training Jacobian of this run", icon="➡️")
else:
    st.info("Press **Train** to train this network (it takes well under a second for the presets).")

st.info("**What to notice.** Training is a deterministic function θ_0 ↦ θ_T: the batches come in a fixed order "
        "and there is no dropout, so the same seed always gives the same θ_T. That is what makes its "
        "derivative, the training Jacobian, well defined. Note P: J will have P² entries.")
