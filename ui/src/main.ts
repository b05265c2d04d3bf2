// Entry point of the window: styles, then the app. Wiring lives in app.ts.
import './styles.css';
import { mountApp } from './app';

mountApp(document.body);
