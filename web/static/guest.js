/* A hearing party's page (docs/protocol.md, "Hearing parties"): join the call
   the link is for, with the microphone and, if wanted, the camera; make a
   WebRTC offer to each other party, and again to whoever comes back after a
   dropped connection. */
(function () {
  "use strict";

  const rtc = window.signvideoRtc;
  const main = document.getElementById("main-content");
  const invitation = decodeURIComponent(window.location.pathname.split("/").pop());
  const seat = rtc.tabToken("signvideo-guest:" + invitation);
  const RECONNECT_DELAYS_MS = [500, 1000, 2000, 4000, 5000];

  const el = {
    alert: document.getElementById("alert"),
    form: document.getElementById("join-form"),
    name: document.getElementById("guest-name"),
    camera: document.getElementById("guest-camera"),
    join: document.getElementById("join"),
    videos: document.getElementById("guest-videos"),
    interpreterVideo: document.getElementById("interpreter-video"),
    interpreterLabel: document.getElementById("interpreter-label"),
    callerVideo: document.getElementById("caller-video"),
    localVideo: document.getElementById("local-video"),
    statusBox: document.getElementById("status-box"),
    status: document.getElementById("status"),
    leave: document.getElementById("leave"),
  };

  const ENDED = {
    removed: "The interpreter has taken you out of the call. You can close this page.",
    guest_left: "You have left the call. You can close this page.",
  };

  let signalling = null;
  let localStream = null;
  let callId = null;
  let iceServers = rtc.readIceServers(main);
  let icePolicy = "all";
  let roles = {};          // party -> "caller" | "interpreter"
  const peers = {};        // party -> peer (rtc.createPeer)
  const streams = {};      // party -> the stream they send
  let names = {};          // party -> name
  let phase = "ready";     // ready, joining, in_call, reconnecting, ended
  let attempt = 0;
  let reconnectTimer = null;
  let leaving = false;

  function show(state, words) {
    el.statusBox.dataset.state = state;
    el.status.textContent = words;
  }

  function showAlert(words) { el.alert.textContent = words; }

  function videoFor(party) {
    return roles[party] === "interpreter" ? el.interpreterVideo : el.callerVideo;
  }

  function closePeer(party) {
    const peer = peers[party];
    if (!peer) return;
    peer.close();
    delete peers[party];
    const video = videoFor(party);
    if (video.srcObject === streams[party]) video.srcObject = null;
    delete streams[party];
    // In a handover, the other interpreter's picture takes the place.
    for (const other of Object.keys(streams)) {
      if (roles[other] === roles[party] && video.srcObject === null) {
        rtc.showStream(video, streams[other]);
        labelInterpreter(other);
      }
    }
  }

  function labelInterpreter(party) {
    if (roles[party] === "interpreter") {
      el.interpreterLabel.textContent = names[party]
        ? "The interpreter, " + names[party] : "The interpreter";
    }
  }

  function newPeer(party) {
    closePeer(party);
    const peer = rtc.createPeer({
      iceServers: iceServers,
      iceTransportPolicy: icePolicy,
      onCandidate: function (candidate) {
        if (peers[party] === peer) send("ice", { call_id: callId, to: party, candidate: candidate });
      },
      onRemoteStream: function (stream) {
        if (peers[party] !== peer) return;
        streams[party] = stream;
        // In a handover, the interpreter taking over is shown (and heard)
        // once the first has gone (closePeer), not over them.
        const video = videoFor(party);
        if (video.srcObject) return;
        rtc.showStream(video, stream);
        labelInterpreter(party);
      },
      onConnectionState: function (state) {
        if (peers[party] !== peer) return;
        if (state === "connected") showConnected();
        if (state === "failed") show("disconnected", "The call could not connect to the " +
          (roles[party] || "other person") + ". Try leaving and using a new link.");
      },
    });
    peer.addLocalStream(localStream);
    peers[party] = peer;
    exposePeers();
    return peer;
  }

  function showConnected() {
    show("in_call", "You are in the call. Speak when you are ready; the interpreter signs what you say.");
  }

  async function offerTo(party) {
    const peer = newPeer(party);
    try {
      const description = await peer.makeOffer();
      if (peers[party] === peer) send("sdp", { call_id: callId, to: party, description: description });
    } catch (err) {
      console.error("signvideo: could not make an offer", err);
    }
  }

  async function onSdp(message) {
    const party = message.from;
    if (!party || !message.description) return;
    if (message.description.type === "answer") {
      const peer = peers[party];
      if (peer && peer.pc.signalingState === "have-local-offer") {
        try { await peer.acceptAnswer(message.description); } catch (err) {
          console.error("signvideo: could not apply an answer", err);
        }
      }
      return;
    }
    // Someone came back and offers afresh: this page gives way and answers.
    const peer = newPeer(party);
    try {
      const answer = await peer.answer(message.description);
      if (peers[party] === peer) send("sdp", { call_id: callId, to: party, description: answer });
    } catch (err) {
      console.error("signvideo: could not answer an offer", err);
    }
  }

  function onIce(message) {
    const peer = peers[message.from];
    if (peer) peer.addRemoteCandidate(message.candidate);
  }

  function send(type, fields) {
    return signalling !== null && signalling.send(type, fields);
  }

  function onConnected(message) {
    callId = message.call_id;
    attempt = 0;
    if (message.token) seat.save(message.token);
    if (Array.isArray(message.ice_servers)) iceServers = message.ice_servers;
    icePolicy = message.ice_transport_policy || "all";
    roles = {};
    names = {};
    for (const party of message.parties || []) {
      roles[party.party] = party.role;
      names[party.party] = party.name;
      labelInterpreter(party.party);
    }
    phase = "in_call";
    el.form.hidden = true;
    el.videos.hidden = false;
    el.leave.hidden = false;
    el.leave.disabled = false;   // disabled by a Leave that did not go through
    rtc.guardLeaving(true);
    show("connecting", "Joining the call… connecting the video and sound.");
    for (const party of Object.keys(peers)) closePeer(party);
    for (const party of Object.keys(roles)) offerTo(party);
  }

  function onEnded(message) {
    phase = "ended";
    if (reconnectTimer !== null) window.clearTimeout(reconnectTimer);
    reconnectTimer = null;
    seat.clear();
    for (const party of Object.keys(peers)) closePeer(party);
    rtc.stopStream(localStream);
    localStream = null;
    el.localVideo.srcObject = null;
    el.videos.hidden = true;
    el.leave.hidden = true;
    rtc.guardLeaving(false);
    leaving = true;
    if (signalling) signalling.close();
    show("ended", ENDED[message.reason] || "The call has ended. You can close this page.");
  }

  function onError(message) {
    // A candidate or description refused as a connection comes or goes:
    // nothing for the hearing person to do (the console ignores them too).
    if (["ice", "sdp", "ping"].includes(message.request_type)) return;
    if (message.request_type === "leave") el.leave.disabled = false;
    if (phase === "joining" || message.request_type === "resume") {
      // The link is dead, or the place could not be taken back.
      seat.clear();
      leaving = true;
      if (signalling) signalling.close();
      rtc.stopStream(localStream);
      localStream = null;
      el.localVideo.srcObject = null;
      phase = "ended";
      el.form.hidden = true;
      el.videos.hidden = true;
      el.leave.hidden = true;
      rtc.guardLeaving(false);
      show("disconnected", "You could not join the call.");
      showAlert(message.message || "You could not join the call.");
      return;
    }
    showAlert(message.message || "Something went wrong.");
  }

  function connect(first) {
    let conn = null;
    function only(handler) {
      return function (message) { if (conn === signalling) handler(message); };
    }
    conn = rtc.openSignalling("/ws/guest", {
      open: only(first),
      close: function () { if (conn === signalling) onClosed(); },
      connected: only(onConnected),
      sdp: only(onSdp),
      ice: only(onIce),
      peer_resumed: only(function (message) { if (message.party) offerTo(message.party); }),
      // An interpreter taking over joins: they make the offer.
      party_joined: only(function (message) {
        roles[message.party] = message.role;
        names[message.party] = message.name;
        if (message.role === "interpreter") {
          show("in_call", (message.name || "Another interpreter") +
            " is joining to take over from the interpreter. The call carries on.");
        }
      }),
      party_left: only(function (message) {
        const role = roles[message.party];
        const name = names[message.party];
        closePeer(message.party);
        delete roles[message.party];
        if (role === "interpreter") {
          show("in_call", (name || "The interpreter") + " has left the call." +
            (message.reason === "handed_over" ? " Their colleague interprets now." : ""));
        }
      }),
      ended: only(onEnded),
      error: only(onError),
      pong: function () {},
    });
    signalling = conn;
  }

  function onClosed() {
    signalling = null;
    if (leaving || phase === "ended") return;
    const token = seat.load();
    if (!token) {
      phase = "ready";
      el.join.disabled = false;
      show("disconnected", "Could not reach SignVideo. Check your internet connection, then try again.");
      return;
    }
    phase = "reconnecting";
    show("reconnecting", "Connection lost. Reconnecting… You keep your place in the call for 1 minute.");
    const delay = RECONNECT_DELAYS_MS[Math.min(attempt, RECONNECT_DELAYS_MS.length - 1)];
    attempt += 1;
    reconnectTimer = window.setTimeout(function () {
      reconnectTimer = null;
      // Left meanwhile (Leave, with no connection to say so): stay out.
      if (phase !== "reconnecting") return;
      connect(function () { send("resume", { token: token }); });
    }, delay);
  }

  async function openMedia(withCamera) {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      throw new Error("This browser cannot use a microphone on this page. Try an up-to-date Chrome, Edge, Firefox or Safari.");
    }
    if (withCamera) {
      try {
        return await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: { ideal: 640 }, height: { ideal: 480 } } });
      } catch (err) {
        // The camera is optional: carry on with the microphone alone.
      }
    }
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: true, video: false });
    } catch (err) {
      throw new Error("We need your microphone so that the interpreter can hear you. " +
        "Select the padlock or microphone symbol next to the web address, choose Allow, then try again.");
    }
  }

  async function join(event) {
    event.preventDefault();
    if (phase !== "ready") return;
    showAlert("");
    const name = el.name.value.trim();
    if (!name) {
      showAlert("Enter your name and role, so the others know who is speaking.");
      el.name.setAttribute("aria-invalid", "true");
      el.name.focus();
      return;
    }
    el.name.removeAttribute("aria-invalid");
    phase = "joining";
    el.join.disabled = true;
    show("joining", "Starting your microphone" + (el.camera.checked ? " and camera…" : "…"));
    try {
      localStream = await openMedia(el.camera.checked);
    } catch (err) {
      phase = "ready";
      el.join.disabled = false;
      show("ready", "You are not in the call yet.");
      showAlert(err.message);
      return;
    }
    if (localStream.getVideoTracks().length) rtc.showStream(el.localVideo, localStream);
    else if (el.camera.checked) {
      showAlert("Your camera could not start, so you are joining with your microphone only. " +
        "The others will hear you but not see you.");
    }
    show("joining", "Joining the call…");
    connect(function () { send("join", { token: invitation, name: name }); });
  }

  function leave() {
    if (phase !== "in_call" && phase !== "reconnecting") return;
    el.leave.disabled = true;
    if (!send("leave", { call_id: callId })) onEnded({ reason: "guest_left" });
  }

  function exposePeers() {
    const pcs = {};
    for (const party of Object.keys(peers)) pcs[party] = peers[party].pc;
    rtc.exposeState({ pcs: pcs, roles: roles });
  }

  el.form.addEventListener("submit", join);
  el.leave.addEventListener("click", leave);
  window.addEventListener("pagehide", function () {
    leaving = true;
    if (signalling) signalling.close();
  });

  rtc.exposeState({
    pcs: {},
    dropConnection: function () { if (signalling) signalling.close(); },
  });

  // Back after a reload: take the place in the call back.
  const saved = seat.load();
  if (saved) {
    el.form.hidden = true;
    phase = "joining";
    show("joining", "Taking back your place in the call…");
    openMedia(true).then(function (stream) {
      localStream = stream;
      if (stream.getVideoTracks().length) rtc.showStream(el.localVideo, stream);
      connect(function () { send("resume", { token: saved }); });
    }).catch(function (err) {
      phase = "ready";
      el.form.hidden = false;
      showAlert(err.message);
    });
  }
})();
