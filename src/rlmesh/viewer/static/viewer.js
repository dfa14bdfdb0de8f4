// The live viewer page: polls /state.json, shows the newest frame, sends controls.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let shown = -1;
  let sources = "";

  function control(action, name) {
    let url = "control?action=" + encodeURIComponent(action);
    if (name !== undefined) url += "&name=" + encodeURIComponent(name);
    fetch(url).catch(() => {});
  }

  function fillSources(state) {
    const key = state.sources.join("\n");
    if (key !== sources) {
      sources = key;
      const select = $("source");
      select.textContent = "";
      for (const name of state.sources) {
        const option = document.createElement("option");
        option.value = option.textContent = name;
        select.appendChild(option);
      }
    }
    if (state.source !== null) $("source").value = state.source;
  }

  function show(state) {
    $("episode").textContent = Math.max(state.episode, 0);
    $("step").textContent = state.step;
    $("reward").textContent = state.reward.toFixed(3);
    $("return").textContent = state["return"].toFixed(3);
    $("fps").textContent = state.fps;
    fillSources(state);
    if (state.frame > shown) {
      shown = state.frame;
      $("frame").src = "frame?v=" + state.frame;
    }
    $("status").textContent = state.quit ? "quitting" : "live";
  }

  function poll() {
    fetch("state.json")
      .then((reply) => reply.json())
      .then((state) => { show(state); setTimeout(poll, 100); })
      .catch(() => {
        $("status").textContent = "run ended";
        $("status").classList.add("off");
        setTimeout(poll, 1000);
      });
  }

  $("skip").addEventListener("click", () => control("skip"));
  $("quit").addEventListener("click", () => control("quit"));
  $("source").addEventListener("change", (event) => control("source", event.target.value));
  poll();
})();
