/* The deaf caller's page: camera preview, what the queue looks like, joining,
   keeping the place through a dropped connection, and the call
   (docs/protocol.md, version 2). */
(function () {
  "use strict";

  const rtc = window.signvideoRtc;
  const main = document.getElementById("main-content");
  const authoritySlug = main.dataset.authority;
  const endedUrl = main.dataset.endedUrl;
  const pageIceServers = rtc.readIceServers(main);
  // Server-rendered: a closed service has no Join button at all.
  const serviceOpenAtLoad = main.dataset.open !== "false";
  const languages = readList(main.dataset.languages);
  const specialism = new URLSearchParams(window.location.search).get("specialism") || null;

  const TOKEN_KEY = "signvideo.resume." + authoritySlug;
  const AVAILABILITY_EVERY_MS = 15000;
  const GRACE_MS = 60000;   // how long the server keeps a dropped caller's place
  const RECONNECT_DELAYS_MS = [500, 1000, 2000, 4000, 5000];

  const el = {
    alert: document.getElementById("alert"),
    wait: document.getElementById("wait"),
    languageInputs: Array.from(document.querySelectorAll('input[name="language"]')),
    videos: document.getElementById("videos"),
    localVideo: document.getElementById("local-video"),
    remoteVideo: document.getElementById("remote-video"),
    cameraProblem: document.getElementById("camera-problem"),
    cameraProblemText: document.getElementById("camera-problem-text"),
    cameraRetry: document.getElementById("camera-retry"),
    statusBox: document.getElementById("status-box"),
    status: document.getElementById("status"),
    statusDetail: document.getElementById("status-detail"),
    join: document.getElementById("join"),      // absent while the service is closed
    leave: document.getElementById("leave"),
    hangup: document.getElementById("hangup"),
    tips: document.getElementById("tips"),
    rtt: document.getElementById("rtt"),
    qualityWarning: document.getElementById("quality-warning"),
    check: document.getElementById("check"),           // absent while closed
    checkStart: document.getElementById("check-start"),
    checkResult: document.getElementById("check-result"),
    guestTile: document.getElementById("guest-tile"),
    guestVideo: document.getElementById("guest-video"),
    guestCaption: document.getElementById("guest-caption"),
    partyNote: document.getElementById("party-note"),
    incomingTile: document.getElementById("incoming-tile"),
    incomingVideo: document.getElementById("incoming-video"),
    incomingCaption: document.getElementById("incoming-caption"),
  };
  const text = rtc.realTimeText({
    input: document.getElementById("rtt-input"),
    log: document.getElementById("rtt-log"),
    state: document.getElementById("rtt-state"),
    empty: document.getElementById("rtt-empty"),
  });

  /* Two things the page keeps track of:
     camera: "starting" | "working" | "failed"
     phase:  "idle"        not in the queue
             "resuming"    page loaded with a saved place: asking for it back
             "joining"     join sent, waiting for `queued`
             "queued" | "leaving"
             "reconnecting" the socket dropped; resuming with the token
             "connecting" | "in_call" | "ending"
             "ended"       going to the call-ended page */
  let camera = "starting";
  let phase = "idle";
  let localStream = null;
  let checking = false;
  let cameraWaiters = [];
  let signalling = null;
  let peer = null;
  // A hearing person the interpreter brought in: {party, name, peer}.
  let guest = null;
  // The interpreter in charge of the call, and one taking over from them in
  // a handover: {party, name, peer, stream, channel}.
  let interpreterParty = null;
  let incoming = null;
  let callId = null;
  let callIceServers = pageIceServers;
  let callIcePolicy = "all";
  let interpreterName = "";
  let leavingPage = false;
  let usedButtons = false;
  let queueText = "";      // the queued display, to go back to
  let queueDetail = "";
  let callText = "";       // and the in-call one
  let serviceOpen = serviceOpenAtLoad;
  let queueFull = main.dataset.queueFull === "true";
  const reconnect = { attempt: 0, timer: null, since: 0, wasInCall: false, pendingAction: null };

  function readList(text) {
    try {
      const value = JSON.parse(text || "[]");
      return Array.isArray(value) ? value.map(String) : [];
    } catch (err) {
      return [];
    }
  }

  // --- words ------------------------------------------------------------------

  function waitWords(seconds) {
    if (seconds < 60) return "less than a minute";
    const minutes = Math.round(seconds / 60);
    return "about " + minutes + " minute" + (minutes === 1 ? "" : "s");
  }

  /* The same words as the wait_text macro in _macros.html. */
  function waitText(data) {
    if (data.queue_full) return "The queue is full. Please try again in a few minutes.";
    if (!data.interpreters_on_duty) {
      return "No interpreter is available right now. " +
        "You can still join the queue and wait, or try again later.";
    }
    const waiting = Number(data.waiting) || 0;
    let text = waiting === 0 ? "Nobody is waiting."
      : waiting === 1 ? "1 person is waiting."
        : waiting + " people are waiting.";
    if (data.expected_wait_seconds !== null && data.expected_wait_seconds !== undefined) {
      text += " The expected wait is " + waitWords(Number(data.expected_wait_seconds)) + ".";
    }
    return text;
  }

  // --- what the page shows ------------------------------------------------------

  function showAlert(text) { el.alert.textContent = text; }
  function clearAlert() { el.alert.textContent = ""; }

  /* The status box: a main line and an optional detail line, in one live
     region, with a colour for the kind of state (never colour alone). */
  function show(kind, text, detail) {
    el.statusBox.dataset.state = kind;
    if (el.status.textContent !== text) el.status.textContent = text;
    const more = detail || "";
    if (el.statusDetail.textContent !== more) el.statusDetail.textContent = more;
    el.statusDetail.hidden = !more;
  }

  /* What to say when not in the queue: about the camera, and whether the
     caller can join. `lead` (optional) goes first, for example "You are not
     in the queue." */
  function showIdle(lead) {
    let kind;
    let text;
    if (camera === "starting") {
      kind = "starting";
      text = "Starting your camera…";
    } else if (camera === "failed") {
      kind = "camera_error";
      text = "Your camera is not working, so you cannot join the queue yet.";
    } else {
      kind = "ready";
      if (!serviceOpen) text = "Your camera is working. You can join the queue when the service opens.";
      else if (queueFull) text = "Your camera is working. The queue is full, so you cannot join just now.";
      else text = "Your camera is working. When you are ready, select Join the queue.";
    }
    if (lead) show(kind, lead, text);
    else show(kind, text);
  }

  function inCallPhase() {
    return phase === "connecting" || phase === "in_call" || phase === "ending" ||
      (phase === "reconnecting" && reconnect.wasInCall);
  }

  function canJoin() {
    return phase === "idle" && camera === "working" && serviceOpen && !queueFull && el.join !== null;
  }

  /* Buttons, videos and the page's exposed state follow the phase. */
  function render() {
    const inCall = inCallPhase();
    const queued = phase === "queued" || phase === "leaving" ||
      (phase === "reconnecting" && !reconnect.wasInCall);
    if (el.join) {
      el.join.hidden = !(phase === "idle" || phase === "joining" || phase === "resuming");
      el.join.disabled = !canJoin();
    }
    el.leave.hidden = !queued;
    el.leave.disabled = phase !== "queued";
    el.hangup.hidden = !inCall;
    el.hangup.disabled = !(phase === "connecting" || phase === "in_call");
    el.remoteVideo.hidden = !inCall;
    el.videos.classList.toggle("videos--in-call", inCall);
    el.tips.hidden = inCall;
    el.rtt.hidden = !inCall;
    if (el.check) {
      el.check.hidden = phase !== "idle";
      el.checkStart.disabled = camera !== "working" || checking;
    }
    for (const input of el.languageInputs) input.disabled = phase !== "idle";
    rtc.guardLeaving(phase !== "idle" && phase !== "ended");
    keepFocus();
    rtc.exposeState({ state: exposedState(), callId: callId });
  }

  /* For tests: "starting", "ready" or "camera_error" when not in the queue,
     otherwise the phase. */
  function exposedState() {
    if (phase !== "idle") return phase;
    return camera === "working" ? "ready" : camera === "failed" ? "camera_error" : "starting";
  }

  /* The button just pressed may now be hidden: once the caller has used the
     buttons, give focus to the one that is now the one to press, rather than
     dropping it at the top of the page. */
  function keepFocus() {
    if (!usedButtons) return;
    const actions = [el.join, el.leave, el.hangup].filter(Boolean);
    const active = document.activeElement;
    const lost = !active || active === document.body ||
      (actions.includes(active) && (active.hidden || active.disabled));
    if (!lost) return;
    const next = actions.find(function (button) { return !button.hidden && !button.disabled; });
    if (next) next.focus();
  }

  // --- the place token (kept across reloads of this tab) ------------------------

  const placeToken = rtc.tabToken(TOKEN_KEY);

  // --- the queue before joining -------------------------------------------------

  let availabilityTimer = null;

  function chosenLanguage() {
    const checked = el.languageInputs.find(function (input) { return input.checked; });
    if (checked) return checked.value;
    return languages.length ? languages[0] : undefined;
  }

  function scheduleAvailability(delay) {
    window.clearTimeout(availabilityTimer);
    availabilityTimer = null;
    if (!serviceOpenAtLoad || !el.wait) return;
    availabilityTimer = window.setTimeout(refreshAvailability, delay);
  }

  /* While not in the queue, ask every 15 s how the queue looks. */
  async function refreshAvailability() {
    availabilityTimer = null;
    if (phase !== "idle") return;
    const params = new URLSearchParams();
    const language = chosenLanguage();
    if (language) params.set("language", language);
    if (specialism) params.set("specialism", specialism);
    const query = params.toString();
    const url = "/api/v1/authorities/" + encodeURIComponent(authoritySlug) + "/availability" +
      (query ? "?" + query : "");
    try {
      const response = await fetch(url, {
        headers: { Accept: "application/json" },
        cache: "no-store",
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error("HTTP " + response.status);
      applyAvailability(await response.json());
    } catch (err) {
      // Keep what the page last said; the next refresh may work.
      console.warn("signvideo: could not check the queue", err);
    } finally {
      if (phase === "idle" && availabilityTimer === null) scheduleAvailability(AVAILABILITY_EVERY_MS);
    }
  }

  function applyAvailability(data) {
    if (!data || typeof data !== "object") return;
    serviceOpen = data.open !== false;
    queueFull = serviceOpen && Boolean(data.queue_full);
    let text;
    if (!serviceOpen) {
      text = "The service has closed." +
        (data.next_open_text ? " It opens again " + data.next_open_text + "." : "");
    } else {
      text = waitText(data);
    }
    if (el.wait.textContent !== text) el.wait.textContent = text;
    el.wait.dataset.state = !serviceOpen ? "closed" : queueFull ? "full" : "open";
    if (phase === "idle") {
      if (el.status.textContent === "You are not in the queue.") showIdle("You are not in the queue.");
      else showIdle();
      render();
    }
  }

  // --- the camera -----------------------------------------------------------------

  /* Resolves once the camera has started or failed. */
  function cameraSettled() {
    if (camera !== "starting") return Promise.resolve();
    return new Promise(function (resolve) { cameraWaiters.push(resolve); });
  }

  function settleCamera() {
    const waiters = cameraWaiters;
    cameraWaiters = [];
    for (const resolve of waiters) resolve();
  }

  async function startCamera() {
    rtc.stopStream(localStream);
    localStream = null;
    camera = "starting";
    el.cameraProblem.hidden = true;
    el.localVideo.hidden = false;
    if (phase === "idle") showIdle();
    render();
    let stream;
    try {
      stream = await rtc.openCamera();
    } catch (err) {
      console.warn("signvideo: camera refused", err);
      camera = "failed";
      el.cameraProblemText.textContent = rtc.describeCameraError(err);
      el.cameraProblem.hidden = false;
      el.localVideo.hidden = true;
      settleCamera();
      if (phase === "idle") showIdle();
      render();
      return;
    }
    localStream = stream;
    camera = "working";
    rtc.showStream(el.localVideo, stream);
    for (const track of stream.getVideoTracks()) track.addEventListener("ended", onCameraLost);
    settleCamera();
    if (phase === "idle") showIdle();
    render();
  }

  /* The pre-call check, in plain words against what signing needs. */
  const CHECK_WORDS = {
    good: "Your video is good for signing.",
    enough: "Your video is enough for signing, but not at its best.",
    too_low: "Your video may not be smooth or sharp enough for signing.",
  };
  const CHECK_ADVICE = "To improve it: put more light on your face and hands, use Wi-Fi " +
    "rather than mobile data, move nearer the router, and close other apps and tabs. " +
    "You can still join.";

  async function checkVideo() {
    if (checking || !localStream) return;
    checking = true;
    el.checkResult.dataset.verdict = "";
    el.checkResult.textContent = "Checking your video… this takes about 5 seconds.";
    render();
    try {
      const ice = JSON.parse(el.check.dataset.ice || "{}");
      const result = await rtc.checkVideo(localStream, ice);
      const figures = Math.round(result.frames_per_second) + " frames a second, " +
        result.width + " × " + result.height + " pixels" +
        (result.round_trip_ms === null ? "" : ", " + Math.round(result.round_trip_ms) + " ms delay");
      el.checkResult.dataset.verdict = result.verdict;
      el.checkResult.dataset.fps = String(result.frames_per_second);
      el.checkResult.dataset.size = result.width + "x" + result.height;
      el.checkResult.textContent = (CHECK_WORDS[result.verdict] || "") + " We received " +
        figures + ". Signing needs at least 20 frames a second and 320 × 240; 30 and " +
        "640 × 480 are best." + (result.verdict === "good" ? "" : " " + CHECK_ADVICE);
    } catch (err) {
      el.checkResult.dataset.verdict = "failed";
      el.checkResult.textContent = "The check could not finish: " + err.message +
        " You can still join the queue.";
    } finally {
      checking = false;
      el.checkStart.textContent = "Check my video again";
      render();
    }
  }

  function onCameraLost() {
    if (phase !== "idle") return;
    camera = "failed";
    el.cameraProblemText.textContent =
      "Your camera stopped working. Check it is connected, then try again.";
    el.cameraProblem.hidden = false;
    showIdle();
    render();
  }

  // --- the signalling socket ------------------------------------------------------

  /* Opens a socket; onOpen runs once it is open. Messages and the close of a
     socket that is no longer the current one are ignored. */
  function connect(onOpen) {
    let conn = null;
    function only(handler) {
      return function (message) { if (conn === signalling) handler(message); };
    }
    conn = rtc.openSignalling("/ws/caller", {
      open: only(onOpen),
      close: function (event) { onSocketClosed(conn, event); },
      queued: only(onQueued),
      position: only(onPosition),
      connected: only(onConnected),
      sdp: only(onSdp),
      ice: only(function (message) {
        if (isIncoming(message.from)) {
          if (incoming.peer) incoming.peer.addRemoteCandidate(message.candidate);
          return;
        }
        if (isGuest(message.from)) {
          if (guest && guest.peer && guest.party === message.from) {
            guest.peer.addRemoteCandidate(message.candidate);
          }
          return;
        }
        if (peer && inCallPhase()) peer.addRemoteCandidate(message.candidate);
      }),
      party_joined: only(onPartyJoined),
      party_left: only(onPartyLeft),
      ended: only(onEnded),
      error: only(onServerError),
      pong: function () {},
    });
    signalling = conn;
  }

  /* Closes the current socket on purpose (no reconnecting). */
  function closeSocket() {
    const closing = signalling;
    signalling = null;
    if (closing) closing.close();
  }

  function send(type, fields) {
    return signalling !== null && signalling.send(type, fields);
  }

  const reportQuality = rtc.qualityReporter(send);

  function showQuality(sample) {
    const words = rtc.describeQuality(sample, "The interpreter's");
    if (el.qualityWarning.textContent !== words) el.qualityWarning.textContent = words;
    el.qualityWarning.hidden = !words;
  }

  // --- joining and the queue ------------------------------------------------------

  function join() {
    if (!canJoin()) return;
    clearAlert();
    window.clearTimeout(availabilityTimer);
    availabilityTimer = null;
    phase = "joining";
    show("joining", "Joining the queue…");
    render();
    connect(function () {
      const fields = { authority: authoritySlug };
      const language = chosenLanguage();
      if (language) fields.language = language;
      if (specialism) fields.specialism = specialism;
      const contact = document.getElementById("contact");
      if (contact && contact.value.trim()) fields.contact = contact.value.trim();
      const costCentre = document.getElementById("cost-centre");
      if (costCentre && costCentre.value) fields.cost_centre = costCentre.value;
      send("join", fields);
    });
  }

  function onQueued(message) {
    if (!["joining", "resuming", "reconnecting", "queued", "leaving"].includes(phase)) return;
    const wasAway = phase === "reconnecting" || phase === "resuming";
    const pending = reconnect.pendingAction;
    stopReconnecting();
    callId = message.call_id;
    if (message.token) placeToken.save(message.token);
    closeCall();   // a call the caller had before the drop is over
    if (wasAway) clearAlert();
    setQueueText(message.position, message.expected_wait_seconds);
    if (pending === "leave") {
      // The caller chose Leave just before the connection dropped.
      phase = "leaving";
      show("queued", "Leaving the queue…");
      render();
      send("leave", { call_id: callId });
      return;
    }
    phase = "queued";
    show("queued", queueText, queueDetail);
    render();
  }

  function onPosition(message) {
    if (phase !== "queued" && phase !== "leaving") return;
    const wait = Object.prototype.hasOwnProperty.call(message, "expected_wait_seconds")
      ? message.expected_wait_seconds : undefined;
    setQueueText(message.position, wait);
    if (phase === "queued") show("queued", queueText, queueDetail);
  }

  /* wait: whole seconds, null (nobody on duty: say nothing), or undefined (unchanged). */
  function setQueueText(position, wait) {
    queueText = "You are number " + position + " in the queue.";
    if (Number(position) === 1) queueText += " You are next.";
    if (wait === null) queueDetail = "";
    else if (wait !== undefined) queueDetail = "Expected wait: " + waitWords(Number(wait)) + ".";
  }

  function leave() {
    if (phase !== "queued") return;
    phase = "leaving";
    show("queued", "Leaving the queue…");
    render();
    send("leave", { call_id: callId });
  }

  // --- the call ---------------------------------------------------------------------

  function hangUp() {
    if (phase !== "connecting" && phase !== "in_call") return;
    phase = "ending";
    show("in_call", "Hanging up…");
    render();
    send("hangup", { call_id: callId });
  }

  function onConnected(message) {
    const pending = reconnect.pendingAction;
    stopReconnecting();
    callId = message.call_id;
    interpreterName = (message.peer && message.peer.display_name) || "";
    if (Array.isArray(message.ice_servers)) callIceServers = message.ice_servers;
    callIcePolicy = message.ice_transport_policy || "all";
    const resumed = Boolean(message.resumed);
    if (!resumed && !inCallPhase()) text.reset();
    closeGuest();
    guest = null;
    note("");
    closeIncoming();
    incoming = null;
    interpreterParty = null;
    for (const party of message.parties || []) {
      if (party.role === "guest") setGuest(party.party, party.name);
      if (party.role === "interpreter" && !party.handover) interpreterParty = party.party;
      if (party.role === "interpreter" && party.handover) {
        incoming = { party: party.party, name: party.name, peer: null, stream: null, channel: null };
      }
    }
    // Throw away any old peer connection: the interpreter makes a new offer.
    closeMain();
    clearAlert();
    if (pending === "hangup") {
      // The caller chose Hang up just before the connection dropped.
      phase = "ending";
      show("in_call", "Hanging up…");
      render();
      send("hangup", { call_id: callId });
      return;
    }
    phase = "connecting";
    callText = "";
    show("connecting", resumed
      ? "You are back in your call. Connecting the video again…"
      : "An interpreter has answered. Connecting the video…");
    render();
    if (!resumed) el.videos.scrollIntoView({ block: "start" });
    newPeer();
  }

  function newPeer() {
    const thisPeer = rtc.createPeer({
      iceServers: callIceServers,
      iceTransportPolicy: callIcePolicy,
      onTextChannel: function (channel) {
        if (peer === thisPeer) text.attach(channel);
      },
      onCandidate: function (candidate) {
        if (peer === thisPeer) send("ice", { call_id: callId, candidate: candidate });
      },
      onRemoteStream: function (stream) {
        if (peer === thisPeer) rtc.showStream(el.remoteVideo, stream);
      },
      onConnectionState: function (connectionState) {
        if (peer === thisPeer) onConnectionState(connectionState);
      },
    });
    thisPeer.hasLocalStream = false;
    thisPeer.quality = rtc.watchQuality(thisPeer.pc, function (sample) {
      if (peer !== thisPeer) return;
      showQuality(sample);
      reportQuality(callId, sample);
    });
    peer = thisPeer;
    rtc.exposeState({ pc: thisPeer.pc });
    return thisPeer;
  }

  async function onSdp(message) {
    // The others make the offers; the caller answers.
    if (!message.description || message.description.type !== "offer") return;
    if (isGuest(message.from)) {
      await answerGuest(message);
      return;
    }
    if (message.from && message.from.startsWith("interpreter:") && interpreterParty &&
        message.from !== interpreterParty) {
      await answerIncoming(message);
      return;
    }
    if (phase !== "connecting" && phase !== "in_call") return;
    // A second offer in the same call (the interpreter's console reconnected or
    // was reopened) starts over on a new peer connection, with the
    // interpreter only: the hearing person's connection carries on.
    if (!peer || peer.pc.remoteDescription) {
      closeMain();
      phase = "connecting";
      show("connecting", "Connecting the video again…");
      render();
      newPeer();
    }
    const thisPeer = peer;
    await cameraSettled();   // so the interpreter sees the caller from the start
    if (peer !== thisPeer) return;
    if (localStream && !thisPeer.hasLocalStream) {
      thisPeer.addLocalStream(localStream);
      thisPeer.hasLocalStream = true;
    }
    try {
      const answer = await thisPeer.answer(message.description);
      if (peer === thisPeer) {
        send("sdp", { call_id: callId, to: message.from, description: answer });
      }
    } catch (err) {
      console.error("signvideo: could not answer the interpreter's offer", err);
      if (peer === thisPeer) showAlert("The video could not be set up. Hang up and call again.");
    }
  }

  function onConnectionState(connectionState) {
    if (phase !== "connecting" && phase !== "in_call") return;
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
    phase = "in_call";
    show("in_call", callText);
    render();
  }

  // --- a handover between interpreters ------------------------------------------------

  function isIncoming(party) {
    return incoming !== null && party === incoming.party;
  }

  function closeIncoming() {
    if (incoming && incoming.peer) {
      incoming.peer.quality.stop();
      incoming.peer.close();
    }
    if (incoming) incoming.peer = null;
    el.incomingVideo.srcObject = null;
    el.incomingTile.hidden = true;
  }

  /* The interpreter taking over offers a connection of their own; it is
     answered beside the current one, and becomes the call's once the first
     interpreter leaves. */
  async function answerIncoming(message) {
    if (!inCallPhase()) return;
    if (!isIncoming(message.from)) {
      closeIncoming();
      incoming = { party: message.from, name: "", peer: null, stream: null, channel: null };
    }
    const thisIncoming = incoming;
    await answerSide(thisIncoming, message, "incomingPc", {
      channel: function (channel) { thisIncoming.channel = channel; },
      stream: function (stream) {
        thisIncoming.stream = stream;
        el.incomingCaption.textContent = (thisIncoming.name || "A new interpreter") + " (taking over)";
        rtc.showStream(el.incomingVideo, stream);
        el.incomingTile.hidden = false;
      },
      // Once it is the call's connection (promoteIncoming).
      state: function (sidePeer, connectionState) {
        if (peer === sidePeer) onConnectionState(connectionState);
      },
    });
  }

  /* Answers the offer of a party other than the interpreter in charge (an
     interpreter taking over, or a hearing person) on a new connection for
     `side` ({party, peer}) that sends the caller's camera too. `on.stream`
     shows what they send; `on.channel` and `on.state`, if given, get its
     text channel and connection states. */
  async function answerSide(side, message, exposeAs, on) {
    if (side.peer) side.peer.close();
    const sidePeer = rtc.createPeer({
      iceServers: callIceServers,
      iceTransportPolicy: callIcePolicy,
      onTextChannel: on.channel && function (channel) {
        if (side.peer === sidePeer) on.channel(channel);
      },
      onCandidate: function (candidate) {
        if (side.peer === sidePeer) send("ice", { call_id: callId, to: side.party, candidate: candidate });
      },
      onRemoteStream: function (stream) {
        if (side.peer === sidePeer) on.stream(stream);
      },
      onConnectionState: on.state && function (connectionState) {
        on.state(sidePeer, connectionState);
      },
    });
    sidePeer.quality = { stop: function () {} };
    side.peer = sidePeer;
    rtc.exposeState({ [exposeAs]: sidePeer.pc });
    await cameraSettled();
    if (side.peer !== sidePeer) return;
    if (localStream) sidePeer.addLocalStream(localStream);
    try {
      const answer = await sidePeer.answer(message.description);
      if (side.peer === sidePeer) send("sdp", { call_id: callId, to: side.party, description: answer });
    } catch (err) {
      console.error("signvideo: could not answer the offer of " + side.party, err);
    }
  }

  /* The first interpreter has left: the one who took over is the call's
     interpreter now, on the connection already running; nothing drops. */
  function promoteIncoming() {
    const next = incoming;
    const before = interpreterName;
    if (peer) {
      peer.quality.stop();
      peer.close();
    }
    peer = next.peer;
    incoming = null;
    interpreterParty = next.party;
    interpreterName = next.name || "";
    el.incomingVideo.srcObject = null;
    el.incomingTile.hidden = true;
    if (peer) {
      const promoted = peer;
      promoted.quality = rtc.watchQuality(promoted.pc, function (sample) {
        if (peer !== promoted) return;
        showQuality(sample);
        reportQuality(callId, sample);
      });
      rtc.exposeState({ pc: promoted.pc, incomingPc: null });
    }
    if (next.stream) rtc.showStream(el.remoteVideo, next.stream);
    if (next.channel) text.attach(next.channel);
    callText = interpreterName
      ? "You are connected with the interpreter, " + interpreterName + "."
      : "You are connected with the interpreter.";
    note((before ? before + " has" : "Your interpreter has") + " handed over to " +
      (interpreterName || "a new interpreter") + ". Your call carries on.");
    if (phase === "connecting" || phase === "in_call") {
      phase = "in_call";
      show("in_call", callText);
      render();
    }
  }

  // --- a hearing person in the call -------------------------------------------------

  function isGuest(party) {
    return typeof party === "string" && party.startsWith("guest:");
  }

  function note(words) {
    el.partyNote.textContent = words;
    el.partyNote.hidden = !words;
  }

  function setGuest(party, name) {
    if (guest && guest.party === party) {
      guest.name = name || guest.name;
    } else {
      closeGuest();
      guest = { party: party, name: name || "A hearing person", peer: null };
    }
    el.guestCaption.textContent = guest.name + " (hearing person)";
  }

  function closeGuest() {
    if (guest && guest.peer) guest.peer.close();
    if (guest) guest.peer = null;
    el.guestVideo.srcObject = null;
    el.guestTile.hidden = true;
  }

  function onPartyJoined(message) {
    if (message.role === "interpreter" && message.handover && inCallPhase()) {
      closeIncoming();
      incoming = { party: message.party, name: message.name || "", peer: null, stream: null, channel: null };
      el.incomingCaption.textContent = (message.name || "A new interpreter") + " (taking over)";
      note((message.name || "Another interpreter") + " is joining to take over from " +
        (interpreterName || "your interpreter") + ". Your call carries on.");
      return;
    }
    if (message.role !== "guest" || !inCallPhase()) return;
    const isNew = !guest || guest.party !== message.party;
    setGuest(message.party, message.name);
    closeGuest();
    if (isNew) {
      note(guest.name + ", a hearing person, has joined the call. " +
        "The interpreter signs what they say, and says what you sign.");
    }
  }

  function onPartyLeft(message) {
    if (message.party === interpreterParty && message.reason === "handed_over" && incoming) {
      promoteIncoming();
      return;
    }
    if (isIncoming(message.party)) {
      const name = incoming.name || "The other interpreter";
      closeIncoming();
      incoming = null;
      note(name + " did not take over. " + (interpreterName || "Your interpreter") + " carries on.");
      return;
    }
    if (!guest || guest.party !== message.party) return;
    const name = guest.name;
    closeGuest();
    if (message.reason === "disconnected") {
      note(name + "'s connection was lost. They may come back.");
      return;
    }
    guest = null;
    note(name + " has left the call.");
  }

  async function answerGuest(message) {
    if (!inCallPhase()) return;
    if (!guest || guest.party !== message.from) setGuest(message.from, null);
    await answerSide(guest, message, "guestPc", {
      stream: function (stream) {
        // Video if they share their camera; their voice is for the interpreter.
        el.guestTile.hidden = stream.getVideoTracks().length === 0;
        rtc.showStream(el.guestVideo, stream);
      },
    });
  }

  /* The connection with the interpreter in charge only: the hearing
     person's and an incoming interpreter's stay as they are. */
  function closeMain() {
    if (peer) {
      peer.quality.stop();
      peer.close();
    }
    peer = null;
    showQuality(null);
    el.remoteVideo.srcObject = null;
    rtc.exposeState({ pc: null });
  }

  function closeCall() {
    closeGuest();
    closeIncoming();
    closeMain();
  }

  function onEnded(message) {
    placeToken.clear();
    stopReconnecting();
    leavingPage = true;
    closeCall();
    rtc.stopStream(localStream);
    closeSocket();
    phase = "ended";
    show("ended", "Your call has ended.");
    render();
    const reason = message.reason || "";
    let url = endedUrl + "?reason=" + encodeURIComponent(reason);
    // An answered call can be rated on the next page, once.
    if (message.rating_key && message.call_id) {
      url += "&call=" + encodeURIComponent(message.call_id) +
        "&key=" + encodeURIComponent(message.rating_key);
    }
    window.location.assign(url);
  }

  // --- errors -------------------------------------------------------------------------

  function onServerError(message) {
    if (message.request_type === "ice" || message.request_type === "ping") {
      // Nothing the caller can do about these; the call carries on.
      console.warn("signvideo: the server refused a message", message);
      return;
    }
    if (message.request_type === "resume") {
      onResumeRefused(message);
      return;
    }
    showAlert(message.message || "Something went wrong. Reload the page and try again.");
    if (phase === "joining") {
      // The join was refused: closed now, queue full, or no such language.
      closeSocket();
      if (message.code === "queue_full") queueFull = true;
      if (message.code === "closed") serviceOpen = false;
      phase = "idle";
      showIdle("You are not in the queue.");
      render();
      scheduleAvailability(0);
    } else if (phase === "leaving") {
      phase = "queued";
      show("queued", queueText, queueDetail);
      render();
    } else if (phase === "ending") {
      phase = callText ? "in_call" : "connecting";
      show(phase, callText || "Connecting the video…");
      render();
    }
  }

  /* The server would not give the place back: it expired, or the call is over. */
  function onResumeRefused(message) {
    const wasResumingAtLoad = phase === "resuming";
    placeToken.clear();
    stopReconnecting();
    closeSocket();
    closeCall();
    callId = null;
    if (message.code === "not_found") {
      showAlert(wasResumingAtLoad
        ? "Your earlier place in the queue has expired. Select Join the queue to join again."
        : "Your place in the queue has expired, because the connection was lost for too long. " +
          "Select Join the queue to join again.");
    } else {
      showAlert((message.message || "We could not give you back your place.") +
        " Select Join the queue to join again.");
    }
    phase = "idle";
    showIdle("You are not in the queue.");
    render();
    scheduleAvailability(0);
  }

  // --- dropped connections --------------------------------------------------------------

  function onSocketClosed(conn, event) {
    if (conn !== signalling || leavingPage) return;
    signalling = null;
    if (phase === "idle" || phase === "ended") return;
    if (phase === "joining" || !placeToken.load()) {
      // Nothing to take back: the join never got a place.
      const hadPlace = phase !== "joining";
      stopReconnecting();
      closeCall();
      callId = null;
      showAlert(hadPlace
        ? "The connection to SignVideo was lost, so you are no longer in the queue. " +
          "Check your internet connection, then select Join the queue to try again."
        : "Could not reach SignVideo. Check your internet connection, then try again.");
      phase = "idle";
      showIdle("You are not in the queue.");
      render();
      scheduleAvailability(0);
      return;
    }
    if (phase !== "reconnecting") {
      reconnect.wasInCall = phase === "connecting" || phase === "in_call" || phase === "ending";
      reconnect.pendingAction = phase === "leaving" ? "leave" : phase === "ending" ? "hangup" : null;
      reconnect.since = Date.now();
      reconnect.attempt = 0;
      // The old peer connection is kept: the video may carry on meanwhile. It
      // is replaced once the call is taken back.
      phase = "reconnecting";
    }
    showReconnecting();
    render();
    const delay = RECONNECT_DELAYS_MS[Math.min(reconnect.attempt, RECONNECT_DELAYS_MS.length - 1)];
    reconnect.attempt += 1;
    window.clearTimeout(reconnect.timer);
    reconnect.timer = window.setTimeout(attemptResume, delay);
  }

  function showReconnecting() {
    let detail;
    if (Date.now() - reconnect.since > GRACE_MS) {
      detail = "Your place may have expired. Keep this page open: if it has, you can join again.";
    } else {
      detail = reconnect.wasInCall
        ? "You keep your call for 1 minute."
        : "You keep your place for 1 minute.";
    }
    show("reconnecting", "Connection lost. Reconnecting…", detail);
  }

  function attemptResume() {
    reconnect.timer = null;
    if (phase !== "reconnecting" && phase !== "resuming") return;
    const token = placeToken.load();
    if (!token) return;
    connect(function () { send("resume", { token: token }); });
  }

  function stopReconnecting() {
    window.clearTimeout(reconnect.timer);
    reconnect.timer = null;
    reconnect.attempt = 0;
    reconnect.pendingAction = null;
  }

  /* A page loaded with a saved place (for example after a reload) asks for it back. */
  function resumeAtLoad(token) {
    phase = "resuming";
    reconnect.wasInCall = false;
    reconnect.since = Date.now();
    show("joining", "Taking back your place in the queue…");
    render();
    connect(function () { send("resume", { token: token }); });
  }

  // --- start ------------------------------------------------------------------------------

  function onAction(action) {
    return function () {
      usedButtons = true;
      action();
    };
  }

  if (el.join) el.join.addEventListener("click", onAction(join));
  el.leave.addEventListener("click", onAction(leave));
  el.hangup.addEventListener("click", onAction(hangUp));
  el.cameraRetry.addEventListener("click", startCamera);
  if (el.checkStart) el.checkStart.addEventListener("click", checkVideo);
  for (const input of el.languageInputs) {
    input.addEventListener("change", function () { scheduleAvailability(0); });
  }
  window.addEventListener("online", function () {
    // Back online: try at once rather than waiting out the back-off.
    if (phase === "reconnecting" && reconnect.timer !== null) {
      window.clearTimeout(reconnect.timer);
      attemptResume();
    }
  });
  window.addEventListener("pagehide", function () {
    leavingPage = true;
    if (signalling) signalling.close();
  });
  window.addEventListener("pageshow", function (event) {
    // Back from the browser's page cache: the socket is gone, start afresh.
    if (event.persisted) window.location.reload();
  });

  rtc.exposeState({
    pc: null,
    state: exposedState(),
    callId: null,
    /* For tests: drop the signalling connection as a network failure would. */
    dropConnection: function () {
      if (signalling) signalling.close();
    },
  });

  const savedToken = placeToken.load();
  if (savedToken) resumeAtLoad(savedToken);
  else render();
  startCamera();
  if (!savedToken) scheduleAvailability(AVAILABILITY_EVERY_MS);
})();
