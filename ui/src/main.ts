// Entry point of the window: styles, then the app. Wiring lives in app.ts.
import './fonts.css';
import './styles.css';
import { mountWindow } from './app';

/**
 * WebKitGTK may run this module before the stylesheet <link> has loaded. The first
 * render measures the list's rows, so it waits for the styles (at most a second).
 */
function stylesLoaded(): Promise<void> {
  const applied = () => getComputedStyle(document.documentElement).getPropertyValue('--font') !== '';
  if (applied()) return Promise.resolve();
  return new Promise((done) => {
    for (const link of document.querySelectorAll('link[rel="stylesheet"]')) {
      link.addEventListener('load', () => done(), { once: true });
      link.addEventListener('error', () => done(), { once: true });
    }
    setTimeout(done, 1000);
  });
}

void stylesLoaded().then(() => mountWindow(document.body));
