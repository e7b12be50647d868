// Latchkey's security keys and passkeys in the browser.
//
// Every WebAuthn form on the site is a plain HTML form marked data-webauthn="…" with
// hidden fields for the ceremony and the credential. This script asks the JSON API
// for the options, runs navigator.credentials with them, puts
// PublicKeyCredential.toJSON() in the hidden field and submits the form, so the
// server answers as for any other form. Without JavaScript or WebAuthn the forms
// stay hidden and everything else keeps working. It is a file, not inline script,
// so the pages' Content-Security-Policy allows only script-src 'self'.
(function () {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }

  // base64url without padding, as the WebAuthn JSON forms use.
  function decode(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) {
      s += "=";
    }
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  }

  function encode(buf) {
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) {
      bin += String.fromCharCode(bytes[i]);
    }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      return Object.assign({}, d, { id: decode(d.id) });
    });
  }

  // The browser's own parsers when it has them (Chromium 129+, Firefox 119+),
  // otherwise the same conversion by hand.
  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    var o = Object.assign({}, json);
    o.challenge = decode(json.challenge);
    o.user = Object.assign({}, json.user, { id: decode(json.user.id) });
    o.excludeCredentials = descriptors(json.excludeCredentials);
    return o;
  }

  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    var o = Object.assign({}, json);
    o.challenge = decode(json.challenge);
    o.allowCredentials = descriptors(json.allowCredentials);
    return o;
  }

  function credentialJSON(cred) {
    if (typeof cred.toJSON === "function") {
      return cred.toJSON();
    }
    var r = cred.response;
    var response = { clientDataJSON: encode(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = encode(r.attestationObject);
      if (r.getTransports) {
        response.transports = r.getTransports();
      }
    } else {
      response.authenticatorData = encode(r.authenticatorData);
      response.signature = encode(r.signature);
      if (r.userHandle) {
        response.userHandle = encode(r.userHandle);
      }
    }
    return {
      id: cred.id,
      rawId: encode(cred.rawId),
      type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      response: response,
      clientExtensionResults: cred.getClientExtensionResults(),
    };
  }

  // begin calls the API with the session cookie; the JSON content type is what the
  // server's cross-site check asks of cookie-carrying API calls.
  function begin(path, body) {
    return fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body || {}),
    }).then(function (res) {
      return res.json().then(function (j) {
        if (!res.ok) {
          var err = new Error((j.error && j.error.message) || "The request failed.");
          err.code = j.error && j.error.code;
          throw err;
        }
        return j;
      });
    });
  }

  function show(form, message) {
    var el = form.querySelector("[data-webauthn-error]");
    if (el) {
      el.textContent = message;
      el.hidden = false;
    }
  }

  function field(form, name, value) {
    form.querySelector('input[name="' + name + '"]').value = value;
  }

  // What each kind of form asks for: the options (from the API or the page) and where
  // the answer goes.
  var kinds = {
    register: function (form) {
      return begin("/api/v1/mfa/webauthn/register/begin").then(function (b) {
        field(form, "ceremony_id", b.ceremony_id);
        return navigator.credentials.create({ publicKey: creationOptions(b.publicKey) });
      });
    },
    passkey: function (form) {
      return begin("/api/v1/login/passkey/begin").then(function (b) {
        field(form, "ceremony_id", b.ceremony_id);
        return navigator.credentials.get({ publicKey: requestOptions(b.publicKey) });
      });
    },
    reauth: function (form) {
      return begin("/api/v1/reauth/webauthn").then(function (b) {
        field(form, "ceremony_id", b.ceremony_id);
        return navigator.credentials.get({ publicKey: requestOptions(b.publicKey) });
      });
    },
    second: function (form) {
      var options = JSON.parse(form.getAttribute("data-options"));
      return navigator.credentials.get({ publicKey: requestOptions(options) });
    },
  };

  document.querySelectorAll("form[data-webauthn]").forEach(function (form) {
    var run = kinds[form.getAttribute("data-webauthn")];
    if (!run) {
      return;
    }
    var box = form.closest("[data-webauthn-box]") || form;
    box.hidden = false;
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      if (!form.reportValidity()) {
        return;
      }
      run(form)
        .then(function (cred) {
          field(form, "credential", JSON.stringify(credentialJSON(cred)));
          form.submit();
        })
        .catch(function (err) {
          if (err.code === "reauth_required") {
            location.href = "/settings/reauth?next=" + encodeURIComponent(location.pathname);
            return;
          }
          show(form, err.name === "NotAllowedError"
            ? "The security key did not answer, or the request was cancelled. Try again."
            : err.message);
        });
    });
  });
})();
