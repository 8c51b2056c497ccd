/* The deaf caller's page: camera preview, queue, call (docs/protocol.md). */
(function () {
  "use strict";

  const rtc = window.signvideoRtc;
  const main = document.getElementById("main-content");
  const authoritySlug = main.dataset.authority;
  const endedUrl = main.dataset.endedUrl;
  const pageIceServers = rtc.readIceServers(main);

  const el = {
    alert: document.getElementById("alert"),
    videos: document.getElementById("videos"),
    localVideo: document.getElementById("local-video"),
    remoteVideo: document.getElementById("remote-video"),
    cameraProblem: document.getElementById("camera-problem"),
    cameraProblemText: document.getElementById("camera-problem-text"),
    cameraRetry: document.getElementById("camera-retry"),
    statusBox: document.getElementById("status-box"),
    status: document.getElementById("status"),
    join: document.getElementById("join"),
    leave: document.getElementById("leave"),
    hangup: document.getElementById("hangup"),
    tips: document.getElementById("tips"),
  };

  let state = "starting";
  let localStream = null;
  let signalling = null;
  let peer = null;
  let callId = null;
  let interpreterName = "";
  let leavingPage = false;
  let usedButtons = false;
  let queueText = "";   // what the status said while queued, to go back to
  let callText = "";    // and while in the call

  /* Every change of state is shown in words in the status region (which
     screen readers announce) and by the colour of the status box. */
  function setState(next, text) {
    state = next;
    el.statusBox.dataset.state = next;
    if (text) el.status.textContent = text;

    const inCall = next === "connecting" || next === "in_call" || next === "ending";
    el.join.hidden = !(next === "starting" || next === "ready" || next === "joining" ||
      next === "camera_error");
    el.join.disabled = next !== "ready";
    el.leave.hidden = !(next === "queued" || next === "leaving");
    el.leave.disabled = next !== "queued";
    el.hangup.hidden = !inCall;
    el.hangup.disabled = next === "ending";
    el.remoteVideo.hidden = !inCall;
    el.videos.classList.toggle("videos--in-call", inCall);
    el.tips.hidden = inCall;
    rtc.guardLeaving(inCall || next === "joining" || next === "queued" || next === "leaving");

    keepFocus();
    rtc.exposeState({ state: next, callId: callId });
  }

  /* The button just pressed may now be hidden: once the caller has used the
     buttons, give focus to the one that is now the one to press, rather than
     dropping it at the top of the page. */
  function keepFocus() {
    if (!usedButtons) return;
    const actions = [el.join, el.leave, el.hangup];
    const active = document.activeElement;
    const lost = !active || active === document.body ||
      (actions.includes(active) && (active.hidden || active.disabled));
    if (!lost) return;
    const next = actions.find(function (button) { return !button.hidden && !button.disabled; });
    if (next) next.focus();
  }

  function showAlert(text) { el.alert.textContent = text; }
  function clearAlert() { el.alert.textContent = ""; }

  async function startCamera() {
    rtc.stopStream(localStream);
    localStream = null;
    el.cameraProblem.hidden = true;
    el.localVideo.hidden = false;
    setState("starting", "Starting your camera…");
    try {
      localStream = await rtc.openCamera();
    } catch (err) {
      console.warn("signvideo: camera refused", err);
      el.cameraProblemText.textContent = rtc.describeCameraError(err);
      el.cameraProblem.hidden = false;
      el.localVideo.hidden = true;
      setState("camera_error", "Your camera is not working, so you cannot join the queue yet.");
      return;
    }
    rtc.showStream(el.localVideo, localStream);
    for (const track of localStream.getVideoTracks()) {
      track.addEventListener("ended", onCameraLost);
    }
    setState("ready", "Your camera is working. When you are ready, select Join the queue.");
  }

  function onCameraLost() {
    if (state === "ready" || state === "starting") {
      el.cameraProblemText.textContent =
        "Your camera stopped working. Check it is connected, then try again.";
      el.cameraProblem.hidden = false;
      setState("camera_error", "Your camera is not working, so you cannot join the queue yet.");
    }
  }

  function join() {
    if (state !== "ready") return;
    clearAlert();
    setState("joining", "Joining the queue…");
    signalling = rtc.openSignalling("/ws/caller", {
      open: function () { signalling.send("join", { authority: authoritySlug }); },
      close: onSocketClosed,
      queued: function (message) {
        callId = message.call_id;
        // message.token will let a dropped caller resume; the protocol has no resume yet.
        showPosition(message.position);
      },
      position: function (message) { showPosition(message.position); },
      connected: onConnected,
      sdp: onSdp,
      ice: function (message) {
        if (peer) peer.addRemoteCandidate(message.candidate);
      },
      ended: onEnded,
      error: onServerError,
      pong: function () {},
    });
  }

  function showPosition(position) {
    if (state !== "joining" && state !== "queued") return;
    let text = "You are number " + position + " in the queue.";
    if (position === 1) text += " You are next.";
    queueText = text;
    setState("queued", text);
  }

  function leave() {
    if (state !== "queued") return;
    setState("leaving", "Leaving the queue…");
    signalling.send("leave", { call_id: callId });
  }

  function hangUp() {
    if (state !== "connecting" && state !== "in_call") return;
    setState("ending", "Hanging up…");
    signalling.send("hangup", { call_id: callId });
  }

  function onConnected(message) {
    callId = message.call_id;
    interpreterName = (message.peer && message.peer.display_name) || "";
    setState("connecting", "An interpreter has answered. Connecting the video…");
    el.videos.scrollIntoView({ block: "start" });
    peer = rtc.createPeer({
      iceServers: Array.isArray(message.ice_servers) ? message.ice_servers : pageIceServers,
      onCandidate: function (candidate) {
        signalling.send("ice", { call_id: callId, candidate: candidate });
      },
      onRemoteStream: function (stream) { rtc.showStream(el.remoteVideo, stream); },
      onConnectionState: onConnectionState,
    });
    peer.addLocalStream(localStream);
    rtc.exposeState({ pc: peer.pc });
  }

  async function onSdp(message) {
    // The interpreter makes the offer; the caller answers.
    if (!peer || !message.description || message.description.type !== "offer") return;
    try {
      const answer = await peer.answer(message.description);
      signalling.send("sdp", { call_id: callId, description: answer });
    } catch (err) {
      console.error("signvideo: could not answer the interpreter's offer", err);
      showAlert("The video could not be set up. Hang up and call again.");
    }
  }

  function onConnectionState(connectionState) {
    if (state !== "connecting" && state !== "in_call") return;
    const withWhom = interpreterName
      ? "You are connected with the interpreter, " + interpreterName + "."
      : "You are connected with the interpreter.";
    if (connectionState === "connected") {
      callText = withWhom;
    } else if (connectionState === "disconnected") {
      callText = "The video has stopped. Trying to reconnect…";
    } else if (connectionState === "failed") {
      callText = "The video could not connect. Hang up and call again.";
    } else {
      return;
    }
    setState("in_call", callText);
  }

  function closeCall() {
    if (peer) peer.close();
    peer = null;
    el.remoteVideo.srcObject = null;
    rtc.exposeState({ pc: null });
  }

  function onEnded(message) {
    leavingPage = true;
    closeCall();
    rtc.stopStream(localStream);
    if (signalling) signalling.close();
    setState("ended", "Your call has ended.");
    const reason = message.reason || "";
    window.location.assign(endedUrl + "?reason=" + encodeURIComponent(reason));
  }

  function onServerError(message) {
    if (message.request_type === "ice" || message.request_type === "ping") {
      // Nothing the caller can do about these; the call carries on.
      console.warn("signvideo: the server refused a message", message);
      return;
    }
    showAlert(message.message || "Something went wrong. Reload the page and try again.");
    if (state === "joining") {
      // The join was refused (for example the council is not taking calls now).
      const closing = signalling;
      signalling = null;
      if (closing) closing.close();
      setState("ready", "You are not in the queue.");
    } else if (state === "leaving") {
      setState("queued", queueText);
    } else if (state === "ending") {
      setState(callText ? "in_call" : "connecting", callText);
    }
  }

  function onSocketClosed() {
    if (leavingPage || signalling === null) return;
    signalling = null;
    const wasInQueueOrCall = state !== "joining";
    closeCall();
    callId = null;
    showAlert(wasInQueueOrCall
      ? "The connection to SignVideo was lost, so you are no longer in the queue. " +
        "Check your internet connection, then select Join the queue to try again."
      : "Could not reach SignVideo. Check your internet connection, then try again.");
    setState("ready", "You are not in the queue.");
  }

  function onAction(action) {
    return function () {
      usedButtons = true;
      action();
    };
  }

  el.join.addEventListener("click", onAction(join));
  el.leave.addEventListener("click", onAction(leave));
  el.hangup.addEventListener("click", onAction(hangUp));
  el.cameraRetry.addEventListener("click", startCamera);
  window.addEventListener("pagehide", function () {
    leavingPage = true;
    if (signalling) signalling.close();
  });

  rtc.exposeState({ pc: null, state: state, callId: null });
  startCamera();
})();
