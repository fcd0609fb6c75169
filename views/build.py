"""Build a network (an MLP or a CNN): the data, the network and optimizer controls, training curves."""
import streamlit as st

import lab
import tj
from tj import charts
from tj import networks
from tj.train import OPTIMIZERS, SCHEDULES
from tj.validate import as_text, validate

st.title("Build a network")
exp = lab.current()
data = tj.load(exp.data)

side = int(data.x_train.shape[1] ** 0.5)
st.subheader("The data: " + ("UCI 8×8 handwritten digits" if exp.data.dataset == "digits" else "MNIST, 28×28"))
c1, c2, c3 = st.columns(3)
c1.metric("training images", f"{len(data.y_train):,}")
c2.metric("test images", f"{len(data.y_test):,}")
c3.metric("pixels per image", f"{side} × {side}", help="pixel values scaled to [0, 1]")
lab.fitted_chart("train_images", lambda width: charts.digits_chart(
    data.x_train[:20].numpy(), [f"#{i}: label {int(y)}" for i, y in enumerate(data.y_train[:20])], width=width))

st.subheader("The network and its training")
advanced = not lab.classroom()
families = networks.buildable()
fam = st.radio("network family", families, index=families.index(networks.family(exp.model)), horizontal=True,
               format_func=lambda name: networks.FAMILIES[name].TITLE, key="family_picker")
family = networks.FAMILIES[fam]
with st.form("config"):
    a, b, c = st.columns(3)
    raw = {"family": fam}
    start = exp.model if networks.family(exp.model) == fam else family.DEFAULT  # the form's values
    for f in family.FIELDS:
        if f.advanced and not advanced:
            continue
        value = getattr(start, f.name)
        if f.kind == "choice":
            raw[f.name] = a.selectbox(f.form, f.choices, index=f.choices.index(value), help=f.help or None)
        elif f.kind == "int":
            raw[f.name] = a.number_input(f.form, value=int(value), min_value=0, step=1, help=f.help or None)
        else:  # widths and convs are typed as text
            raw[f.name] = a.text_input(f.form, as_text(f, value), help=f.help or None)
    if len(family.DATASETS) > 1:
        raw["dataset"] = a.selectbox("dataset", family.DATASETS, index=family.DATASETS.index(exp.data.dataset),
                                     format_func={"digits": "8×8 digits", "mnist": "MNIST 28×28"}.get)
    else:
        raw["dataset"] = family.DATASETS[0]
    if advanced:
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
        lab.get("train", checked.experiment)
        st.rerun()  # the sidebar and the URL show the new experiment; its training is cached by now
    lab.get("train", exp)  # trained now, shown once the guided lecture reveals it

lab.hold_answers()
n = exp.model.n_params
mem = tj.memory_estimate(exp)
est = lab.get("estimate", exp)
c1, c2, c3 = st.columns(3)
c1.metric("parameters P", f"{n:,}")
c2.metric(f"J will be ({lab.megabytes(mem['jacobian'])})", f"{n:,} × {n:,}")
c3.metric("J will take about", f"{est['jacobian']:.0f} s", help="estimated from a short timed probe on this server")
over = lab.check(exp)
if not over.ok:
    st.warning("**J of this network is over this server's limits** (training still works): " + over.message)

if submitted or lab.have("train", exp) is not None:
    result = lab.get("train", exp)
    if not result.ok:
        step, epoch = result.diverged_at
        st.error(f"**Training diverged** at step {step} (epoch {epoch + 1}): the loss became NaN or infinite. "
                 "The learning rate is too large for this network. Lower it (the paper uses 0.1 with momentum 0.9, "
                 "3e-3 for Adam) or use the cosine schedule.")
        st.stop()
    m = result.metrics
    for column, chart in zip(st.columns(2), charts.curves_charts(m)):
        column.altair_chart(chart)
    st.markdown(f"Final test loss **{m.test_loss[-1]:.4f}** nats, test accuracy **{100 * m.test_acc[-1]:.1f} %** "
                f"(before training: {m.test_loss[0]:.3f} nats).")
    if m.test_loss[-1] >= m.test_loss[0]:
        st.warning("The network did not learn: the test loss did not go down. Try a smaller learning rate.")
    titles = tj.perturb.prediction_titles(exp, result.theta_final, data.x_test[:20], data.y_test[:20])
    lab.fitted_chart("predictions", lambda width: charts.digits_chart(data.x_test[:20].numpy(), titles, columns=5,
                                                                      size=64, width=width))
    st.page_link("views/jacobian.py", label="Next: compute the training Jacobian of this run", icon="➡️")
else:
    st.info("Press **Train** to train this network (it takes well under a second for the presets).")

lab.notice("Training is a deterministic function θ_0 ↦ θ_T: the batches come in a fixed order and there is no "
           "dropout, so the same seed always gives the same θ_T. That is what makes its derivative, the training "
           f"Jacobian, well defined. With P = {n:,} parameters, J has {n * n:,} entries.")
