"use strict";
// Keys never travel in URLs to the server: a link may carry one in the fragment (#key=…), which
// the browser does not send; this moves it into the tab's session storage and out of the address bar.
window.capacitySession = {
  takeKey(storageKey) {
    const match = location.hash.match(/key=([^&]+)/);
    if (match) {
      sessionStorage.setItem(storageKey, decodeURIComponent(match[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
    return sessionStorage.getItem(storageKey);
  },
};
