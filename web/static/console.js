/* The interpreter console: states (available, break, wrap-up…), offers, and
   calls (docs/protocol.md, version 2). The interpreter makes the WebRTC offer
   once a call is connected, and again whenever either side comes back after a
   dropped connection. */
(function () {
  "use strict";

  const rtc = window.signvideoRtc;
  const main = document.getElementById("main-content");
  const pageIceServers = rtc.readIceServers(main);
  // Interpreter fatigue: suggest a handover after this many seconds of
  // continuous interpreting, and ask for one after that many.
  const HANDOVER_SUGGEST_S = Number(main.dataset.handoverSuggest) || 1200;
  const HANDOVER_ASK_S = Number(main.dataset.handoverAsk) || 2400;
  let interpretingTimer = null;
  const baseTitle = document.title;

  const el = {
    alert: document.getElementById("alert"),
    paused: document.getElementById("paused"),
    state: document.getElementById("state"),
    stateDetail: document.getElementById("state-detail"),
    wrapUp: document.getElementById("wrap-up"),
    wrapUpCountdown: document.getElementById("wrap-up-countdown"),
    endWrapUp: document.getElementById("end-wrap-up"),
    department: document.getElementById("department"),
    departmentChoice: document.getElementById("department-choice"),
    departmentSave: document.getElementById("department-save"),
    departmentSaved: document.getElementById("department-saved"),
    endOtherCall: document.getElementById("end-other-call"),
    makeAvailable: document.getElementById("make-available"),
    breakReason: document.getElementById("break-reason"),
    takeBreak: document.getElementById("take-break"),
    goOffline: document.getElementById("go-offline"),
    offer: document.getElementById("offer"),
    offerAuthority: document.getElementById("offer-authority"),
    offerWaited: document.getElementById("offer-waited"),
    offerCountdown: document.getElementById("offer-countdown"),
    accept: document.getElementById("accept"),
    decline: document.getElementById("decline"),
    call: document.getElementById("call"),
    callHeading: document.getElementById("call-heading"),
    callerContact: document.getElementById("caller-contact"),
    localVideo: document.getElementById("local-video"),
    remoteVideo: document.getElementById("remote-video"),
    hangup: document.getElementById("hangup"),
    events: document.getElementById("events"),
    guestNone: document.getElementById("guest-none"),
    inviteGuest: document.getElementById("invite-guest"),
    guestInvitation: document.getElementById("guest-invitation"),
    guestLink: document.getElementById("guest-link"),
    guestLinkHint: document.getElementById("guest-link-hint"),
    copyGuestLink: document.getElementById("copy-guest-link"),
    guest: document.getElementById("guest"),
    guestHeading: document.getElementById("guest-heading"),
    guestVideo: document.getElementById("guest-video"),
    removeGuest: document.getElementById("remove-guest"),
    handoverStatus: document.getElementById("handover-status"),
    requestHandover: document.getElementById("request-handover"),
    cancelHandover: document.getElementById("cancel-handover"),
    colleague: document.getElementById("colleague"),
    colleagueHeading: document.getElementById("colleague-heading"),
    colleagueVideo: document.getElementById("colleague-video"),
    completeHandover: document.getElementById("complete-handover"),
    offerHeading: document.getElementById("offer-heading"),
    offerHandover: document.getElementById("offer-handover"),
  };
  const qualityWarning = document.getElementById("quality-warning");
  const reportQuality = rtc.qualityReporter(function (type, fields) {
    return signalling !== null && signalling.send(type, fields);
  });

  function showQuality(sample) {
    const words = rtc.describeQuality(sample, "The caller's");
    if (qualityWarning.textContent !== words) qualityWarning.textContent = words;
    qualityWarning.hidden = !words;
  }

  const text = rtc.realTimeText({
    input: document.getElementById("rtt-input"),
    log: document.getElementById("rtt-log"),
    state: document.getElementById("rtt-state"),
    empty: document.getElementById("rtt-empty"),
    // Taking over a call: the caller's page reads this text channel only once
    // the call is theirs, so nothing typed before then would reach them.
    held: function () {
      return call && call.incoming
        ? "You can type to the caller once the call is yours." : null;
    },
  });

  // Each state in words; the colour of #state (style.css) goes with it.
  const STATES = {
    connecting: ["Connecting to the service…", "Please wait."],
    disconnected: ["Not connected",
      "The connection to SignVideo was lost. Trying again… " +
      "If this keeps happening, reload the page or sign in again."],
    offline: ["You are offline", "You will not be offered calls."],
    available: ["You are available",
      "Waiting for a call. When a call is offered, it appears on this page in yellow."],
    offered: ["A call is being offered to you", "Accept or decline it below."],
    in_call: ["You are in a call", "Select Hang up to end the call."],
    wrap_up: ["Wrap-up after your call", "You will not be offered a call until wrap-up ends."],
    break: ["You are on a break", "You will not be offered calls. " +
      "Select Make me available when you are ready."],
  };

  const BREAK_REASONS = {
    comfort: "Comfort break",
    meal: "Meal break",
    training: "Training",
    admin: "Admin work",
    other: "Other reason",
  };

  const MISSED_OFFERS_TEXT = "You were paused because you missed 2 offers in a row. " +
    "Make yourself available when you are ready.";

  const END_REASONS = {
    caller_hung_up: "the caller hung up",
    interpreter_hung_up: "you hung up",
    caller_disconnected: "the caller's connection was lost",
    interpreter_disconnected: "your connection was lost",
    caller_left: "the caller left before the call was answered",
    handed_over: "you handed it over to your colleague",
    incoming_left: "you left before taking it over",
    cancelled_by_interpreter: "your colleague no longer needs the handover",
  };

  const WITHDRAWN_REASONS = {
    expired: "The call was not accepted in time, so it is being offered to someone else.",
    caller_left: "The caller left the queue before the call was accepted.",
    caller_disconnected: "The caller's connection was lost, so the offer was withdrawn. " +
      "If they come back, the call will be offered again.",
    handover_cancelled: "The handover is no longer needed, so the offer was withdrawn.",
  };

  const RECONNECT_DELAYS_MS = [500, 1000, 2000, 4000, 5000];

  let signalling = null;
  // The last `state` message: what the server says the interpreter is doing.
  let server = { state: "connecting", callId: null, reason: null, since: null, until: null };
  let waitingForServer = false;
  let offer = null;        // {callId, authorityName, deadline, received, waitedSeconds, timer}
  let lastOffer = null;    // {callId, authorityName}: the offer a `connected` follows
  let call = null;         // {callId, authorityName, iceServers, peer, localStream}
  let wrapUpTimer = null;
  // The call just finished, for choosing its department during wrap-up.
  let lastCall = null;
  let wrapUpEndsAt = 0;
  let reconnectAttempt = 0;
  let droppedDuringCall = false;   // the socket dropped while this page had a call
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
    const state = server.state;
    const words = STATES[state] || [state, ""];
    el.state.textContent = words[0];
    el.state.dataset.state = state;
    let detail = words[1];
    if (state === "break") {
      const reason = server.reason === "missed_offers"
        ? "Paused after missed offers"
        : BREAK_REASONS[server.reason] || "";
      if (reason) detail = "Reason: " + reason + ". " + detail;
    }

    // The server says we are in a call whose video is not on this page yet:
    // it re-sends `connected` straight after, but keep a way to end the call.
    const callNotHere = state === "in_call" && call === null && server.callId !== null &&
      !(lastOffer && lastOffer.callId === server.callId);
    el.endOtherCall.hidden = !callNotHere;
    if (callNotHere) detail = "Connecting to your call…";
    el.stateDetail.textContent = detail;

    // Only what the current state allows; nothing while offered or in a call.
    const idle = state === "offline" || state === "available" || state === "wrap_up" ||
      state === "break";
    const busy = waitingForServer || !idle;
    el.makeAvailable.disabled = busy || !(state === "offline" || state === "break");
    el.takeBreak.disabled = busy || state === "break";
    el.breakReason.disabled = el.takeBreak.disabled;
    el.goOffline.disabled = busy || state === "offline";
    el.endWrapUp.disabled = waitingForServer;

    const paused = state === "break" && server.reason === "missed_offers";
    const pausedText = paused ? MISSED_OFFERS_TEXT : "";
    if (el.paused.textContent !== pausedText) el.paused.textContent = pausedText;

    renderWrapUp();
    rtc.exposeState({ state: state });
  }

  /* Wrap-up: a countdown to `until`, and a way to end it early. */
  function renderDepartment(inWrapUp) {
    const show = inWrapUp && lastCall !== null && lastCall.costCentres.length > 0;
    if (show && el.department.hidden) {
      el.departmentChoice.replaceChildren();
      const none = new Option("Not known", "");
      el.departmentChoice.add(none);
      for (const centre of lastCall.costCentres) {
        el.departmentChoice.add(new Option(centre.name, centre.code));
      }
      el.departmentChoice.value = lastCall.costCentre;
      el.departmentSaved.textContent = lastCall.costCentre
        ? "The caller chose " + nameOfCostCentre(lastCall.costCentre) + "."
        : "";
    }
    el.department.hidden = !show;
  }

  function nameOfCostCentre(code) {
    const found = lastCall && lastCall.costCentres.find(function (c) { return c.code === code; });
    return found ? found.name : code;
  }

  function renderWrapUp() {
    const inWrapUp = server.state === "wrap_up";
    renderDepartment(inWrapUp);
    el.wrapUp.hidden = !inWrapUp;
    window.clearInterval(wrapUpTimer);
    wrapUpTimer = null;
    if (!inWrapUp) {
      rescueFocus(el.wrapUp);
      return;
    }
    const until = Date.parse(server.until || "");
    const since = Date.parse(server.since || "");
    wrapUpEndsAt = Number.isNaN(until) ? 0 : until;
    // Trust the server's length of wrap-up over a browser clock that is ahead or behind.
    if (wrapUpEndsAt && !Number.isNaN(since) && wrapUpEndsAt - since > 0) {
      wrapUpEndsAt = Math.min(wrapUpEndsAt, server.receivedAt + (wrapUpEndsAt - since));
    }
    tickWrapUp();
    wrapUpTimer = window.setInterval(tickWrapUp, 250);
  }

  function tickWrapUp() {
    if (!wrapUpEndsAt) {
      el.wrapUpCountdown.textContent = "Wrap-up time";
      return;
    }
    const left = Math.max(0, Math.ceil((wrapUpEndsAt - Date.now()) / 1000));
    el.wrapUpCountdown.textContent = left > 0
      ? "You will be available for calls in " + duration(left) + "."
      : "Wrap-up is ending…";
  }

  function endOtherCall() {
    if (server.state !== "in_call" || call !== null || server.callId === null) return;
    el.endOtherCall.disabled = true;
    signalling.send("hangup", { call_id: server.callId });
  }

  /* Moves focus somewhere sensible when the focused control disappears. */
  function rescueFocus(container) {
    if (container.contains(document.activeElement)) el.state.focus();
  }

  // --- your state ---------------------------------------------------------------

  function requestState(state, reason) {
    clearAlert();
    waitingForServer = true;
    render();
    const fields = { state: state };
    if (reason) fields.reason = reason;
    if (!signalling.send("set_state", fields)) {
      waitingForServer = false;
      render();
    }
  }

  function makeAvailable() {
    if (server.state === "offline" || server.state === "break") requestState("available");
  }

  function takeBreak() {
    if (el.takeBreak.disabled) return;
    requestState("break", el.breakReason.value);
  }

  function goOffline() {
    if (el.goOffline.disabled) return;
    requestState("offline");
  }

  function endWrapUp() {
    if (server.state !== "wrap_up") return;
    clearAlert();
    waitingForServer = true;
    render();
    if (!signalling.send("end_wrap_up")) {
      waitingForServer = false;
      render();
    }
  }

  function onState(message) {
    const before = server.state;
    server = {
      state: message.state,
      callId: message.call_id || null,
      reason: message.reason || null,
      since: message.since || null,
      until: message.until || null,
      receivedAt: Date.now(),
    };
    el.endOtherCall.disabled = false;
    waitingForServer = false;
    if (server.state !== "offered") hideOffer();
    if (call && server.state !== "in_call") {
      // The call ended while this console was away (its lease ran out).
      closeCall();
      if (!/^Call ended/.test(el.events.textContent)) {
        tellInterpreter(droppedDuringCall
          ? "Call ended while your console was disconnected." : "Call ended.");
      }
    }
    if (server.state === "wrap_up" && before !== "wrap_up" &&
        /^Call ended/.test(el.events.textContent) && !/wrap-up time/.test(el.events.textContent)) {
      tellInterpreter(el.events.textContent + " Your wrap-up time has started.");
    }
    if (server.state === "break" && server.reason === "missed_offers" && before !== "break") {
      tellInterpreter("You were paused after missing offers.");
    }
    render();
    if (server.state === "wrap_up" && before !== "wrap_up" &&
        (document.activeElement === document.body || document.activeElement === null)) {
      el.endWrapUp.focus();
    }
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
    const handover = message.handover || null;
    el.offerHeading.textContent = handover ? "Handover: take over a call" : "Incoming call";
    el.offerHandover.textContent = handover
      ? handover.from + " is asking you to take over a call in progress. You join it with them first."
      : "";
    el.offerHandover.hidden = !handover;
    el.accept.disabled = false;
    el.decline.disabled = false;
    el.offer.hidden = false;
    tickOffer();
    offer.timer = window.setInterval(tickOffer, 250);
    tellInterpreter(handover
      ? "Handover offered: take over a call from " + handover.from + "."
      : "Incoming call from " + authorityName + ".");
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

  /* `connected`: a call accepted here, or (with `resumed`) one this console
     comes back to after a reload or a dropped connection. */
  async function onConnected(message) {
    const iceServers = Array.isArray(message.ice_servers) ? message.ice_servers : pageIceServers;
    const icePolicy = message.ice_transport_policy || "all";
    if (call && call.callId === message.call_id) {
      // This page still shows the call: only the video starts again.
      call.iceServers = iceServers;
      call.icePolicy = icePolicy;
      tellInterpreter("Back in the call. Connecting the video again…");
      await newPeerAndOffer(call);
      offerToGuests(call, message.parties);
      offerToColleague(call, message.parties);
      return;
    }
    closeCall();
    // `state: in_call` may already have closed the offer panel.
    const authorityName = lastOffer && lastOffer.callId === message.call_id
      ? lastOffer.authorityName
      : (message.peer && message.peer.authority) || "a caller";
    hideOffer();
    clearAlert();
    const callId = message.call_id;
    const thisCall = {
      callId: callId, authorityName: authorityName, iceServers: iceServers,
      icePolicy: icePolicy, peer: null, localStream: null, guest: null,
      colleague: null, incoming: Boolean(message.handover),
    };
    call = thisCall;
    // An incoming interpreter's own interpreting time starts as they join.
    startInterpretingTimer(thisCall, message.handover ? null : message.peer && message.peer.answered_at);
    text.reset();
    document.getElementById("rtt").hidden = false;
    rtc.guardLeaving(true);
    render();

    lastCall = {
      callId: callId,
      costCentre: (message.peer && message.peer.cost_centre) || "",
      costCentres: (message.peer && message.peer.cost_centres) || [],
    };
    el.callHeading.textContent = "Call from " + authorityName;
    const contact = message.peer && message.peer.contact;
    el.callerContact.textContent = contact
      ? "If you are cut off, the caller can be reached at: " + contact
      : "The caller left no way to reach them if you are cut off.";
    el.callerContact.hidden = false;
    el.hangup.disabled = false;
    el.call.hidden = false;
    el.hangup.focus();
    tellInterpreter(message.resumed
      ? "Back in your call from " + authorityName + ". Connecting the video…"
      : message.handover ? "Handover accepted. Joining the call…"
        : "Call accepted. Connecting the video…");
    renderHandover(thisCall);

    let stream;
    try {
      stream = await rtc.openCamera();
    } catch (err) {
      console.error("signvideo: camera failed", err);
      if (call !== thisCall) return;
      // Carry on without video from this side: the caller's video still
      // comes, and the two can type to each other.
      showAlert("Your camera could not be started, so the caller cannot see you. " +
        rtc.describeCameraError(err) + " You can carry on in text: type in the box below " +
        "the video, or hang up.");
      thisCall.textOnly = true;
      await newPeerAndOffer(thisCall);
      offerToGuests(thisCall, message.parties);
      offerToColleague(thisCall, message.parties);
      return;
    }
    if (call !== thisCall) {      // ended while the camera was starting
      rtc.stopStream(stream);
      return;
    }
    thisCall.localStream = stream;
    rtc.showStream(el.localVideo, stream);
    await newPeerAndOffer(thisCall);
    offerToGuests(thisCall, message.parties);
    offerToColleague(thisCall, message.parties);
  }

  // --- warm handover ---------------------------------------------------------------

  /* What the handover controls show: for the interpreter in charge, a way
     to ask for a colleague and, once they have joined, to leave the call to
     them; for the incoming interpreter, who they are taking over from. */
  function renderHandover(thisCall, words) {
    if (call !== thisCall) return;
    const state = thisCall.handover || "none";
    const colleague = thisCall.colleague;
    const incoming = thisCall.incoming;
    el.requestHandover.hidden = incoming || state !== "none";
    el.requestHandover.disabled = false;
    el.cancelHandover.hidden = incoming || !["requested", "offered", "joined"].includes(state);
    el.cancelHandover.disabled = false;
    el.colleague.hidden = !colleague;
    if (colleague) {
      el.colleagueHeading.textContent = incoming
        ? colleague.name + " is handing this call over to you. Once they leave, the call is yours."
        : colleague.name + " has joined to take over. Brief them, then leave the call to them.";
    }
    el.completeHandover.hidden = incoming || !colleague;
    el.completeHandover.disabled = false;
    if (colleague) el.completeHandover.textContent = "Leave the call to " + colleague.name;
    // Leaving is the way out while a colleague is joined (Hang up would end
    // the caller's call); the incoming interpreter's Hang up leaves it.
    el.hangup.hidden = !incoming && Boolean(colleague);
    el.hangup.textContent = incoming ? "Leave the call" : "Hang up";
    const text = words !== undefined ? words : {
      none: "",
      requested: "Looking for a colleague to take over. They will appear here when they join.",
      offered: "A colleague is being asked to take over…",
      joined: "",
    }[state] || "";
    el.handoverStatus.textContent = text;
    el.handoverStatus.hidden = !text;
  }

  /* Which other party a message is from: "guest", "colleague" or null (the caller). */
  function sideOf(party) {
    if (typeof party !== "string") return null;
    if (party.startsWith("guest:")) return "guest";
    if (party.startsWith("interpreter:")) return "colleague";
    return null;
  }

  function setColleague(thisCall, party, name) {
    if (!thisCall.colleague || thisCall.colleague.party !== party) {
      closeSidePeer(thisCall, "colleague");
      thisCall.colleague = { party: party, name: name || "Your colleague", peer: null };
    }
  }

  function dropColleague(thisCall) {
    closeSidePeer(thisCall, "colleague");
    thisCall.colleague = null;
    rescueFocus(el.colleague);
  }

  /* A console that joins (or comes back to) a call with a colleague in it
     makes the offer to them, as every newcomer does. */
  function offerToColleague(thisCall, parties) {
    for (const party of parties || []) {
      if (party.role !== "interpreter" || call !== thisCall) continue;
      setColleague(thisCall, party.party, party.name);
      if (!party.handover) thisCall.incoming = true;
      else thisCall.handover = "joined";
      renderHandover(thisCall);
      text.refresh();
      offerToSide(thisCall, "colleague");
    }
  }

  const HANDOVER_CANCELLED = {
    cancelled_by_interpreter: "You cancelled the handover.",
    incoming_left: "Your colleague left before taking over. The call stays with you; " +
      "you can ask again.",
    interpreter_disconnected: "Your colleague's connection was lost. The call stays with you; " +
      "you can ask again.",
  };

  function onHandover(message) {
    const thisCall = call;
    if (!thisCall || thisCall.callId !== message.call_id) return;
    if (message.state === "completed") {
      // The incoming interpreter now has the call.
      thisCall.incoming = false;
      text.refresh();
      thisCall.handover = null;
      dropColleague(thisCall);
      renderHandover(thisCall, "");
      const name = message.colleague ? message.colleague.name : "Your colleague";
      tellInterpreter(name + " has left. The call is yours now.");
      return;
    }
    if (message.state === "cancelled") {
      thisCall.handover = null;
      dropColleague(thisCall);
      const words = HANDOVER_CANCELLED[message.reason] || "The handover was cancelled.";
      renderHandover(thisCall, words);
      tellInterpreter(words);
      return;
    }
    thisCall.handover = message.state;
    if (message.state === "joined" && message.colleague) {
      setColleague(thisCall, message.colleague.party, message.colleague.name);
      tellInterpreter(message.colleague.name + " has joined to take over. Connecting them…");
    }
    renderHandover(thisCall);
    if (message.state === "requested") tellInterpreter("Handover asked for. Looking for a colleague…");
  }

  function requestHandover() {
    if (!call) return;
    el.requestHandover.disabled = true;
    signalling.send("request_handover", { call_id: call.callId });
  }

  function cancelHandover() {
    if (!call) return;
    el.cancelHandover.disabled = true;
    signalling.send("cancel_handover", { call_id: call.callId });
  }

  function completeHandover() {
    if (!call || !call.colleague) return;
    el.completeHandover.disabled = true;
    tellInterpreter("Leaving the call to " + call.colleague.name + "…");
    signalling.send("complete_handover", { call_id: call.callId });
  }

  // --- other parties: a hearing person, a colleague in a handover -------------------

  /* Besides the caller, a call may hold a hearing person (call.guest) and,
     in a handover, a colleague (call.colleague): each {party, name, peer},
     with a WebRTC connection of its own shown in its own video. Whoever
     joins the call (or comes back) makes the offer; an offer that crosses
     this console's own waiting offer is ignored, so that one of the two
     stands. */
  const SIDES = {
    guest: { video: el.guestVideo, expose: "guestPc" },
    colleague: { video: el.colleagueVideo, expose: "colleaguePc" },
  };

  function closeSidePeer(thisCall, kind) {
    const side = thisCall[kind];
    if (side && side.peer) {
      side.peer.close();
      side.peer = null;
    }
    SIDES[kind].video.srcObject = null;
    rtc.exposeState({ [SIDES[kind].expose]: null });
  }

  function sidePeer(thisCall, kind) {
    closeSidePeer(thisCall, kind);
    const side = thisCall[kind];
    const peer = rtc.createPeer({
      iceServers: thisCall.iceServers,
      iceTransportPolicy: thisCall.icePolicy,
      onCandidate: function (candidate) {
        if (call === thisCall && side.peer === peer) {
          signalling.send("ice", { call_id: thisCall.callId, to: side.party, candidate: candidate });
        }
      },
      onRemoteStream: function (stream) {
        if (call === thisCall && side.peer === peer) rtc.showStream(SIDES[kind].video, stream);
      },
    });
    if (thisCall.localStream) {
      peer.addLocalStream(thisCall.localStream);
    } else {
      peer.pc.addTransceiver("video", { direction: "recvonly" });
      peer.pc.addTransceiver("audio", { direction: "recvonly" });
    }
    side.peer = peer;
    rtc.exposeState({ [SIDES[kind].expose]: peer.pc });
    return peer;
  }

  async function offerToSide(thisCall, kind) {
    const side = thisCall[kind];
    const peer = sidePeer(thisCall, kind);
    try {
      const description = await peer.makeOffer();
      if (side.peer === peer) {
        signalling.send("sdp", { call_id: thisCall.callId, to: side.party, description: description });
      }
    } catch (err) {
      console.error("signvideo: could not make an offer to " + side.party, err);
    }
  }

  async function onSideSdp(thisCall, kind, message) {
    const side = thisCall[kind];
    if (!side || side.party !== message.from) return;
    const description = message.description;
    const own = side.peer;
    if (description.type === "answer") {
      if (own && own.pc.signalingState === "have-local-offer") {
        try { await own.acceptAnswer(description); } catch (err) {
          console.error("signvideo: could not apply the answer of " + side.party, err);
        }
      }
      return;
    }
    if (own && own.pc.signalingState === "have-local-offer") return;
    const peer = sidePeer(thisCall, kind);
    try {
      const answer = await peer.answer(description);
      if (side.peer === peer) {
        signalling.send("sdp", { call_id: thisCall.callId, to: side.party, description: answer });
      }
    } catch (err) {
      console.error("signvideo: could not answer the offer of " + side.party, err);
    }
  }

  // --- a hearing party ---------------------------------------------------------

  function showGuest(thisCall, party, name) {
    if (!thisCall.guest || thisCall.guest.party !== party) {
      closeSidePeer(thisCall, "guest");
      thisCall.guest = { party: party, name: name, peer: null };
    }
    el.guestHeading.textContent = name + " (hearing person) is in the call.";
    el.removeGuest.textContent = "Remove " + name + " from the call";
    el.removeGuest.disabled = false;
    el.guest.hidden = false;
    el.guestNone.hidden = true;
    el.guestInvitation.hidden = true;
  }

  function hideGuest(thisCall) {
    closeSidePeer(thisCall, "guest");
    thisCall.guest = null;
    rescueFocus(el.guest);
    el.guest.hidden = true;
    el.guestNone.hidden = false;
    el.inviteGuest.disabled = false;
  }

  function offerToGuests(thisCall, parties) {
    for (const party of parties || []) {
      if (party.role !== "guest" || call !== thisCall) continue;
      showGuest(thisCall, party.party, party.name || "The hearing person");
      offerToSide(thisCall, "guest");
    }
  }

  function onPartyJoined(message) {
    if (call && call.callId === message.call_id && message.role === "interpreter") {
      setColleague(call, message.party, message.name);
      closeSidePeer(call, "colleague");
      call.handover = "joined";
      renderHandover(call);
      return;
    }
    if (!call || call.callId !== message.call_id || message.role !== "guest") return;
    showGuest(call, message.party, message.name);
    closeSidePeer(call, "guest");
    tellInterpreter(message.name + " (hearing person) has joined the call. Connecting them…");
  }

  const GUEST_LEFT = {
    removed: "You removed {name} from the call.",
    left: "{name} has left the call.",
    disconnected: "{name}'s connection was lost. If they come back within a minute, they rejoin.",
  };

  function onPartyLeft(message) {
    if (call && call.callId === message.call_id && call.colleague &&
        call.colleague.party === message.party) {
      dropColleague(call);
      renderHandover(call);
      return;
    }
    if (!call || call.callId !== message.call_id || !call.guest ||
        call.guest.party !== message.party) return;
    const name = call.guest.name;
    hideGuest(call);
    tellInterpreter((GUEST_LEFT[message.reason] || "{name} has left the call.").replace("{name}", name));
  }

  function inviteGuest() {
    if (!call) return;
    el.inviteGuest.disabled = true;
    signalling.send("invite_guest", { call_id: call.callId });
  }

  function onGuestInvitation(message) {
    if (!call || call.callId !== message.call_id) return;
    el.inviteGuest.disabled = false;
    el.inviteGuest.textContent = "Make a new link";
    const until = new Date(Date.now() + Number(message.expires_in) * 1000);
    const time = until.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" });
    el.guestLink.value = message.url;
    el.guestLinkHint.textContent = "It works once, until " + time +
      ". Send it to the hearing person. A new link stops this one working.";
    el.guestInvitation.hidden = false;
    el.guestLink.focus();
    el.guestLink.select();
    tellInterpreter("Invitation link made. Send it to the hearing person.");
  }

  function copyGuestLink() {
    el.guestLink.select();
    const done = function () { tellInterpreter("Link copied. Paste it into an email or chat to the hearing person."); };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(el.guestLink.value).then(done, function () {
        tellInterpreter("Could not copy the link. Select it and copy it yourself.");
      });
    } else {
      tellInterpreter("Select the link and copy it yourself.");
    }
  }

  function removeGuest() {
    if (!call || !call.guest) return;
    el.removeGuest.disabled = true;
    signalling.send("remove_guest", { call_id: call.callId, party: call.guest.party });
  }

  /* A new peer connection for the call, and a new SDP offer to the caller
     (after accepting, and after either side comes back). */
  async function newPeerAndOffer(thisCall) {
    if (thisCall.peer) {
      thisCall.peer.quality.stop();
      thisCall.peer.close();
    }
    thisCall.peer = null;
    el.remoteVideo.srcObject = null;
    // Still starting the camera: the offer is made once it is ready.
    if (!thisCall.localStream && !thisCall.textOnly) return;
    const callId = thisCall.callId;
    const peer = rtc.createPeer({
      iceServers: thisCall.iceServers,
      iceTransportPolicy: thisCall.icePolicy,
      createTextChannel: true,
      onTextChannel: function (channel) {
        if (call === thisCall && thisCall.peer === peer) text.attach(channel);
      },
      onCandidate: function (candidate) {
        if (call === thisCall && thisCall.peer === peer) {
          signalling.send("ice", { call_id: callId, candidate: candidate });
        }
      },
      onRemoteStream: function (stream) {
        if (call === thisCall && thisCall.peer === peer) rtc.showStream(el.remoteVideo, stream);
      },
      onConnectionState: function (connectionState) {
        if (call !== thisCall || thisCall.peer !== peer) return;
        if (connectionState === "connected") tellInterpreter("Connected with the caller from " + thisCall.authorityName + ".");
        else if (connectionState === "disconnected") tellInterpreter("The video has stopped. Trying to reconnect…");
        else if (connectionState === "failed") tellInterpreter("The video could not connect. Hang up, and the caller can call again.");
      },
    });
    thisCall.peer = peer;
    peer.quality = rtc.watchQuality(peer.pc, function (sample) {
      if (call !== thisCall || thisCall.peer !== peer) return;
      showQuality(sample);
      reportQuality(callId, sample);
    });
    rtc.exposeState({ pc: peer.pc, callId: callId });
    if (thisCall.localStream) {
      peer.addLocalStream(thisCall.localStream);
    } else {
      // No camera here: still receive the caller's video.
      peer.pc.addTransceiver("video", { direction: "recvonly" });
      peer.pc.addTransceiver("audio", { direction: "recvonly" });
    }
    try {
      const description = await peer.makeOffer();
      if (call === thisCall && thisCall.peer === peer) {
        signalling.send("sdp", { call_id: callId, description: description });
      }
    } catch (err) {
      console.error("signvideo: could not make the WebRTC offer", err);
      if (call === thisCall && thisCall.peer === peer) {
        showAlert("The video could not be set up. Hang up and try the next call.");
      }
    }
  }

  function onPeerResumed(message) {
    if (!call || call.callId !== message.call_id) return;
    if (message.party && message.party !== "caller") return;
    tellInterpreter("The caller's connection came back. Connecting the video again…");
    newPeerAndOffer(call);
  }

  async function onSdp(message) {
    const kind = sideOf(message.from);
    if (kind && message.description) {
      if (!call) return;
      if (kind === "colleague" && message.description.type === "offer") {
        setColleague(call, message.from, call.colleague && call.colleague.name);
      }
      await onSideSdp(call, kind, message);
      return;
    }
    if (!call || !call.peer || !message.description || message.description.type !== "answer") return;
    const peer = call.peer;
    // An answer to an offer this page has since replaced is of no use.
    if (peer.pc.signalingState !== "have-local-offer") return;
    try {
      await peer.acceptAnswer(message.description);
    } catch (err) {
      console.error("signvideo: could not apply the caller's answer", err);
      if (call && call.peer === peer) {
        showAlert("The video could not be set up. Hang up and try the next call.");
      }
    }
  }

  function onIce(message) {
    const kind = sideOf(message.from);
    if (kind) {
      const side = call && call[kind];
      if (side && side.party === message.from && side.peer) {
        side.peer.addRemoteCandidate(message.candidate);
      }
      return;
    }
    if (call && call.peer) call.peer.addRemoteCandidate(message.candidate);
  }

  function hangUp() {
    if (!call) return;
    el.hangup.disabled = true;
    tellInterpreter("Hanging up…");
    signalling.send("hangup", { call_id: call.callId });
  }

  /* Continuous interpreting time, from the answer, and the handover prompts. */
  function startInterpretingTimer(thisCall, answeredAt) {
    const since = Date.parse(answeredAt || "");
    const start = Number.isNaN(since) ? Date.now() : Math.min(since, Date.now());
    const timeEl = document.getElementById("interpreting-time");
    const handoverEl = document.getElementById("handover");
    window.clearInterval(interpretingTimer);
    function tick() {
      if (call !== thisCall) { window.clearInterval(interpretingTimer); return; }
      const seconds = Math.floor((Date.now() - start) / 1000);
      const minutes = Math.floor(seconds / 60);
      timeEl.textContent = "Interpreting for " + minutes + (minutes === 1 ? " minute" : " minutes");
      let words = "";
      let level = "";
      if (seconds >= HANDOVER_ASK_S) {
        level = "ask";
        words = "You have been interpreting for " + minutes + " minutes. Please hand over " +
          "to a colleague now: select Ask for a handover.";
      } else if (seconds >= HANDOVER_SUGGEST_S) {
        level = "suggest";
        words = "You have been interpreting for " + minutes + " minutes. Think about a " +
          "handover (select Ask for a handover): a fresh interpreter makes fewer mistakes.";
      }
      if (handoverEl.textContent !== words) handoverEl.textContent = words;
      handoverEl.hidden = !words;
      handoverEl.dataset.level = level;
    }
    tick();
    interpretingTimer = window.setInterval(tick, 1000);
  }

  function closeCall() {
    if (!call) return;
    window.clearInterval(interpretingTimer);
    text.detach();
    showQuality(null);
    if (call.peer) {
      call.peer.quality.stop();
      call.peer.close();
    }
    hideGuest(call);
    dropColleague(call);
    call.handover = null;
    el.colleague.hidden = true;
    el.handoverStatus.hidden = true;
    el.hangup.hidden = false;
    el.hangup.textContent = "Hang up";
    el.guestInvitation.hidden = true;
    el.inviteGuest.textContent = "Make an invitation link";
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
    let text = "Call ended: " + reason + ".";
    if (server.state === "wrap_up") text += " Your wrap-up time has started.";
    tellInterpreter(text);
    render();
  }

  // --- the socket -------------------------------------------------------------

  function connect() {
    let conn = null;
    function only(handler) {
      return function (message) { if (conn === signalling) handler(message); };
    }
    conn = rtc.openSignalling("/ws/console", {
      open: only(function () { reconnectAttempt = 0; }),
      close: function (event) { if (conn === signalling) onSocketClosed(event); },
      state: only(onState),
      offer: only(showOffer),
      offer_withdrawn: only(function (message) {
        hideOffer();
        tellInterpreter(WITHDRAWN_REASONS[message.reason] || "The call offer was withdrawn.");
      }),
      connected: only(onConnected),
      peer_resumed: only(onPeerResumed),
      party_joined: only(onPartyJoined),
      party_left: only(onPartyLeft),
      guest_invitation: only(onGuestInvitation),
      handover: only(onHandover),
      sdp: only(onSdp),
      ice: only(onIce),
      ended: only(onEnded),
      cost_centre_saved: only(function (message) {
        if (lastCall && lastCall.callId === message.call_id) {
          lastCall.costCentre = message.cost_centre || "";
        }
        el.departmentSave.disabled = false;
        el.departmentSaved.textContent = message.cost_centre
          ? "Saved: " + nameOfCostCentre(message.cost_centre) + "."
          : "Saved: no department.";
        tellInterpreter(message.cost_centre
          ? "Department saved: " + nameOfCostCentre(message.cost_centre) + "."
          : "Department cleared.");
      }),
      error: only(onError),
      pong: function () {},
    });
    signalling = conn;
  }

  function onError(message) {
    // SDP and ICE can cross with someone leaving; the call's messages say so.
    if (["ice", "sdp", "ping"].includes(message.request_type)) {
      console.warn("signvideo: the server refused a message", message);
      return;
    }
    showAlert(message.message || "Something went wrong.");
    el.endOtherCall.disabled = false;
    waitingForServer = false;
    if (message.request_type === "hangup") el.hangup.disabled = false;
    if (message.request_type === "invite_guest") el.inviteGuest.disabled = false;
    if (message.request_type === "remove_guest") el.removeGuest.disabled = false;
    if (message.request_type === "request_handover") el.requestHandover.disabled = false;
    if (message.request_type === "cancel_handover") el.cancelHandover.disabled = false;
    if (message.request_type === "complete_handover") el.completeHandover.disabled = false;
    if (message.request_type === "set_cost_centre") el.departmentSave.disabled = false;
    if (message.request_type === "accept" && offer) {
      el.accept.disabled = false;
      el.decline.disabled = false;
    }
    render();
  }

  function onSocketClosed(event) {
    signalling = null;
    if (leavingPage) return;
    hideOffer();
    server = { state: "disconnected", callId: null, reason: null, since: null, until: null };
    waitingForServer = false;
    // 4000-4999: the server closed this console on purpose (for example it was
    // opened in another window). Reconnecting would take it back, and the two
    // windows would keep closing each other.
    if (event && event.code >= 4000 && event.code < 5000) {
      if (call) {
        closeCall();
        tellInterpreter("The call carries on in your other window.");
      }
      render();
      el.stateDetail.textContent = (event.reason || "This console was closed by the service.") +
        (event.code === 4001 ? " Sign in again to carry on." : " Reload this page to use the console here instead.");
      return;
    }
    // Otherwise the service keeps your state (and your call) for a short
    // while: reconnect quickly, keeping the call's video on the page meanwhile.
    droppedDuringCall = call !== null;
    if (call) tellInterpreter("The connection to SignVideo was lost. Reconnecting… The call is kept for a few seconds.");
    render();
    const delay = RECONNECT_DELAYS_MS[Math.min(reconnectAttempt, RECONNECT_DELAYS_MS.length - 1)];
    reconnectAttempt += 1;
    window.setTimeout(connect, delay);
  }

  el.makeAvailable.addEventListener("click", makeAvailable);
  el.takeBreak.addEventListener("click", takeBreak);
  el.goOffline.addEventListener("click", goOffline);
  el.endWrapUp.addEventListener("click", endWrapUp);
  el.departmentSave.addEventListener("click", function () {
    if (!lastCall || !signalling) return;
    clearAlert();
    el.departmentSave.disabled = true;
    el.departmentSaved.textContent = "Saving…";
    const code = el.departmentChoice.value || null;
    if (!signalling.send("set_cost_centre", { call_id: lastCall.callId, cost_centre: code })) {
      el.departmentSave.disabled = false;
      el.departmentSaved.textContent = "Not saved: not connected to SignVideo.";
    }
  });
  el.accept.addEventListener("click", accept);
  el.decline.addEventListener("click", decline);
  el.hangup.addEventListener("click", hangUp);
  el.inviteGuest.addEventListener("click", inviteGuest);
  el.copyGuestLink.addEventListener("click", copyGuestLink);
  el.removeGuest.addEventListener("click", removeGuest);
  el.requestHandover.addEventListener("click", requestHandover);
  el.cancelHandover.addEventListener("click", cancelHandover);
  el.completeHandover.addEventListener("click", completeHandover);
  el.endOtherCall.addEventListener("click", endOtherCall);
  window.addEventListener("pagehide", function () {
    leavingPage = true;
    if (signalling) signalling.close();
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) window.location.reload();
  });

  rtc.exposeState({
    pc: null,
    state: server.state,
    callId: null,
    /* For tests: drop the signalling connection as a network failure would. */
    dropConnection: function () {
      if (signalling) signalling.close();
    },
  });
  render();
  connect();
})();
