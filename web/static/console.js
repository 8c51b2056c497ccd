/* The interpreter console: availability, offers, and calls (docs/protocol.md).
   The interpreter makes the WebRTC offer once a call is connected. */
(function () {
  "use strict";

  const rtc = window.signvideoRtc;
  const main = document.getElementById("main-content");
  const pageIceServers = rtc.readIceServers(main);
  const baseTitle = document.title;

  const el = {
    alert: document.getElementById("alert"),
    state: document.getElementById("state"),
    stateDetail: document.getElementById("state-detail"),
    availability: document.getElementById("availability"),
    endOtherCall: document.getElementById("end-other-call"),
    offer: document.getElementById("offer"),
    offerAuthority: document.getElementById("offer-authority"),
    offerWaited: document.getElementById("offer-waited"),
    offerCountdown: document.getElementById("offer-countdown"),
    accept: document.getElementById("accept"),
    decline: document.getElementById("decline"),
    call: document.getElementById("call"),
    callHeading: document.getElementById("call-heading"),
    localVideo: document.getElementById("local-video"),
    remoteVideo: document.getElementById("remote-video"),
    hangup: document.getElementById("hangup"),
    events: document.getElementById("events"),
  };

  const STATES = {
    connecting: ["Connecting to the service…", "Please wait."],
    disconnected: ["Not connected",
      "The connection to SignVideo was lost. Trying again… " +
      "If this keeps happening, reload the page or sign in again."],
    offline: ["You are unavailable", "You will not be offered calls."],
    available: ["You are available",
      "Waiting for a call. When a call is offered, it appears on this page in yellow."],
    offered: ["A call is being offered to you", "Accept or decline it below."],
    in_call: ["You are in a call", "Select Hang up to end the call."],
  };

  const END_REASONS = {
    caller_hung_up: "the caller hung up",
    interpreter_hung_up: "you hung up",
    caller_disconnected: "the caller's connection was lost",
    interpreter_disconnected: "your connection was lost",
    caller_left: "the caller left before the call was answered",
  };

  const WITHDRAWN_REASONS = {
    expired: "The call was not accepted in time, so it is being offered to someone else.",
    caller_left: "The caller left the queue before the call was accepted.",
  };

  let signalling = null;
  let serverState = "connecting";
  let serverCallId = null;
  let waitingForServer = false;
  let offer = null;        // {callId, authorityName, deadline, received, waitedSeconds, timer}
  let lastOffer = null;    // {callId, authorityName}: the offer a `connected` follows
  let call = null;         // {callId, authorityName, peer, localStream}
  let reconnectDelay = 1000;
  let leavingPage = false;

  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  function duration(seconds) {
    const minutes = Math.floor(seconds / 60);
    const rest = seconds % 60;
    if (!minutes) return plural(rest, "second");
    return rest ? plural(minutes, "minute") + " " + plural(rest, "second") : plural(minutes, "minute");
  }

  function showAlert(text) { el.alert.textContent = text; }
  function clearAlert() { el.alert.textContent = ""; }
  function tellInterpreter(text) { el.events.textContent = text; }

  function render() {
    const words = STATES[serverState] || [serverState, ""];
    el.state.textContent = words[0];
    el.state.dataset.state = serverState;
    el.stateDetail.textContent = words[1];

    const canToggle = serverState === "offline" || serverState === "available";
    el.availability.hidden = !(canToggle || serverState === "connecting" ||
      serverState === "disconnected");
    el.availability.disabled = !canToggle || waitingForServer;
    el.availability.textContent = serverState === "available"
      ? "Make me unavailable" : "Make me available";

    // The server says we are in a call this page never accepted (the console
    // was reloaded, or opened in another window): there is no video here, so
    // offer a way to end it rather than leave the interpreter stuck.
    const otherCall = serverState === "in_call" && call === null && serverCallId !== null &&
      !(lastOffer && lastOffer.callId === serverCallId);
    el.endOtherCall.hidden = !otherCall;
    if (otherCall) {
      el.stateDetail.textContent = "This call was started in another window or before the " +
        "page was reloaded, so its video is not on this page. End it to take new calls.";
    }
    rtc.exposeState({ state: serverState });
  }

  function endOtherCall() {
    if (serverState !== "in_call" || call !== null || serverCallId === null) return;
    el.endOtherCall.disabled = true;
    signalling.send("hangup", { call_id: serverCallId });
  }

  /* Moves focus somewhere sensible when the focused control disappears. */
  function rescueFocus(container) {
    if (container.contains(document.activeElement)) el.state.focus();
  }

  // --- availability ---------------------------------------------------------

  function toggleAvailability() {
    if (serverState !== "offline" && serverState !== "available") return;
    clearAlert();
    waitingForServer = true;
    render();
    signalling.send("set_availability", { available: serverState === "offline" });
  }

  // --- offers ---------------------------------------------------------------

  function showOffer(message) {
    hideOffer();
    const authorityName = (message.authority && message.authority.name) || "a caller";
    offer = {
      callId: message.call_id,
      authorityName: authorityName,
      received: Date.now(),
      deadline: Date.now() + Number(message.expires_in) * 1000,
      waitedSeconds: Math.floor(Number(message.waited_seconds) || 0),
      timer: null,
    };
    lastOffer = { callId: message.call_id, authorityName: authorityName };
    el.offerAuthority.textContent = authorityName;
    el.accept.disabled = false;
    el.decline.disabled = false;
    el.offer.hidden = false;
    tickOffer();
    offer.timer = window.setInterval(tickOffer, 250);
    tellInterpreter("Incoming call from " + authorityName + ".");
    rtc.guardLeaving(true);
    el.accept.focus();
    el.offer.scrollIntoView({ block: "nearest" });
  }

  function tickOffer() {
    if (!offer) return;
    const now = Date.now();
    const left = Math.max(0, Math.ceil((offer.deadline - now) / 1000));
    el.offerWaited.textContent = duration(offer.waitedSeconds + Math.floor((now - offer.received) / 1000));
    el.offerCountdown.textContent = left > 0
      ? plural(left, "second") + " left to accept"
      : "Time is up";
    document.title = "Incoming call (" + left + " s left) – " + baseTitle;
  }

  function hideOffer() {
    if (!offer) return;
    window.clearInterval(offer.timer);
    offer = null;
    el.offer.hidden = true;
    document.title = baseTitle;
    rtc.guardLeaving(call !== null);
    rescueFocus(el.offer);
  }

  function accept() {
    if (!offer) return;
    el.accept.disabled = true;
    el.decline.disabled = true;
    el.offerCountdown.textContent = "Accepting…";
    signalling.send("accept", { call_id: offer.callId });
  }

  function decline() {
    if (!offer) return;
    signalling.send("decline", { call_id: offer.callId });
    hideOffer();
    tellInterpreter("You declined the call. It has gone back to the queue for another interpreter.");
  }

  // --- calls ----------------------------------------------------------------

  async function startCall(message) {
    // `state: in_call` may already have closed the offer panel.
    const authorityName = lastOffer && lastOffer.callId === message.call_id
      ? lastOffer.authorityName
      : (message.peer && message.peer.authority) || "a caller";
    hideOffer();
    clearAlert();
    const callId = message.call_id;
    const thisCall = { callId: callId, authorityName: authorityName, peer: null, localStream: null };
    call = thisCall;
    rtc.guardLeaving(true);

    thisCall.peer = rtc.createPeer({
      iceServers: Array.isArray(message.ice_servers) ? message.ice_servers : pageIceServers,
      onCandidate: function (candidate) {
        signalling.send("ice", { call_id: callId, candidate: candidate });
      },
      onRemoteStream: function (stream) { rtc.showStream(el.remoteVideo, stream); },
      onConnectionState: function (connectionState) {
        if (call !== thisCall) return;
        if (connectionState === "connected") tellInterpreter("Connected with the caller from " + authorityName + ".");
        else if (connectionState === "disconnected") tellInterpreter("The video has stopped. Trying to reconnect…");
        else if (connectionState === "failed") tellInterpreter("The video could not connect. Hang up, and the caller can call again.");
      },
    });
    rtc.exposeState({ pc: thisCall.peer.pc, callId: callId });

    el.callHeading.textContent = "Call from " + authorityName;
    el.hangup.disabled = false;
    el.call.hidden = false;
    el.hangup.focus();
    tellInterpreter("Call accepted. Connecting the video…");

    let stream;
    try {
      stream = await rtc.openCamera();
    } catch (err) {
      console.error("signvideo: camera failed", err);
      if (call === thisCall) {
        showAlert("Your camera could not be started, so the call is being ended. " +
          rtc.describeCameraError(err));
        hangUp();
      }
      return;
    }
    if (call !== thisCall) {      // ended while the camera was starting
      rtc.stopStream(stream);
      return;
    }
    thisCall.localStream = stream;
    rtc.showStream(el.localVideo, stream);
    thisCall.peer.addLocalStream(stream);
    try {
      const description = await thisCall.peer.makeOffer();
      if (call === thisCall) signalling.send("sdp", { call_id: callId, description: description });
    } catch (err) {
      console.error("signvideo: could not make the WebRTC offer", err);
      showAlert("The video could not be set up. Hang up and try the next call.");
    }
  }

  async function onSdp(message) {
    if (!call || !message.description || message.description.type !== "answer") return;
    try {
      await call.peer.acceptAnswer(message.description);
    } catch (err) {
      console.error("signvideo: could not apply the caller's answer", err);
      showAlert("The video could not be set up. Hang up and try the next call.");
    }
  }

  function onIce(message) {
    if (call) call.peer.addRemoteCandidate(message.candidate);
  }

  function hangUp() {
    if (!call) return;
    el.hangup.disabled = true;
    tellInterpreter("Hanging up…");
    signalling.send("hangup", { call_id: call.callId });
  }

  function closeCall() {
    if (!call) return;
    call.peer.close();
    rtc.stopStream(call.localStream);
    call = null;
    el.remoteVideo.srcObject = null;
    el.localVideo.srcObject = null;
    el.call.hidden = true;
    rtc.guardLeaving(offer !== null);
    rtc.exposeState({ pc: null, callId: null });
    rescueFocus(el.call);
  }

  function onEnded(message) {
    closeCall();
    const reason = END_REASONS[message.reason] ||
      String(message.reason || "unknown").replace(/_/g, " ");
    tellInterpreter("Call ended: " + reason + ".");
  }

  // --- the socket -------------------------------------------------------------

  function connect() {
    signalling = rtc.openSignalling("/ws/console", {
      open: function () {
        reconnectDelay = 1000;
      },
      close: onSocketClosed,
      state: function (message) {
        serverState = message.state;
        serverCallId = message.call_id || null;
        el.endOtherCall.disabled = false;
        waitingForServer = false;
        if (serverState !== "offered") hideOffer();
        render();
      },
      offer: showOffer,
      offer_withdrawn: function (message) {
        hideOffer();
        tellInterpreter(WITHDRAWN_REASONS[message.reason] || "The call offer was withdrawn.");
      },
      connected: startCall,
      sdp: onSdp,
      ice: onIce,
      ended: onEnded,
      error: function (message) {
        if (message.request_type === "ice" || message.request_type === "ping") {
          console.warn("signvideo: the server refused a message", message);
          return;
        }
        showAlert(message.message || "Something went wrong.");
        el.endOtherCall.disabled = false;
        waitingForServer = false;
        if (message.request_type === "hangup") el.hangup.disabled = false;
        if (message.request_type === "accept" && offer) {
          el.accept.disabled = false;
          el.decline.disabled = false;
        }
        render();
      },
      pong: function () {},
    });
  }

  function onSocketClosed(event) {
    if (leavingPage) return;
    const hadCall = call !== null;
    hideOffer();
    closeCall();
    if (hadCall) tellInterpreter("Call ended: your connection was lost.");
    serverState = "disconnected";
    serverCallId = null;
    waitingForServer = false;
    render();
    // 4000-4999: the server closed this console on purpose (for example it was
    // opened in another window). Reconnecting would take it back, and the two
    // windows would keep closing each other.
    if (event && event.code >= 4000 && event.code < 5000) {
      el.stateDetail.textContent = (event.reason || "This console was closed by the service.") +
        " Reload this page to use the console here instead.";
      return;
    }
    window.setTimeout(connect, reconnectDelay);
    reconnectDelay = Math.min(reconnectDelay * 2, 15000);
  }

  el.availability.addEventListener("click", toggleAvailability);
  el.accept.addEventListener("click", accept);
  el.decline.addEventListener("click", decline);
  el.hangup.addEventListener("click", hangUp);
  el.endOtherCall.addEventListener("click", endOtherCall);
  window.addEventListener("pagehide", function () {
    leavingPage = true;
    if (signalling) signalling.close();
  });

  rtc.exposeState({ pc: null, state: serverState, callId: null });
  render();
  connect();
})();
