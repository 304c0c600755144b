/* spinesim 3D viewer: a small, dependency-free WebGL viewer for scenes written by frontends/pictures/scene3d.py.
 *
 *   const viewer = SpinesimViewer3D.create(canvas, sceneJson, {legend: element, labels: true});
 *   const viewer = SpinesimViewer3D.mount(canvas, jsonScriptElement, options, unavailableText);  // null if no WebGL
 *   viewer.setVisible(name, bool); viewer.setOpacity(name, 0..1); viewer.setColor(name, [r, g, b]);
 *   viewer.rotate(dAzimuthDeg, dElevationDeg); viewer.zoom(factor); viewer.resetView(); viewer.render();
 *
 * Options: legend (element), labels (false: no tags or callouts), labelFontPx (tags, default 12),
 * annotationFontPx (callouts, default 14), legendOpacity (false: no opacity sliders), background.
 * Items whose "tagged" is true carry their label as a tag in the picture; every item is in the legend.
 * The scene's "annotations" are callouts: words in a box off their point, joined to it by a leader
 * line, set outward from the focus on screen so that they do not cover what they name (never over
 * their own point, and clear of the callouts before them).
 * Drag to orbit, wheel or pinch to zoom, shift-drag (or right-drag) to pan, double-click to reset;
 * with the canvas focused, arrow keys orbit, + and - zoom, 0 resets.
 * Meshes are lit by a headlight (Blinn-Phong); opaque meshes are drawn first, then the transparent
 * ones back to front without writing depth. Coordinates are LPS millimetres, the head (+z) is up.
 */
(function (global) {
  "use strict";

  // ------------------------------------------------------------------ small matrix helpers (column-major)
  function perspective(fovy, aspect, near, far) {
    const f = 1 / Math.tan(fovy / 2), nf = 1 / (near - far);
    return [f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) * nf, -1, 0, 0, 2 * far * near * nf, 0];
  }
  function sub(a, b) { return [a[0] - b[0], a[1] - b[1], a[2] - b[2]]; }
  function add(a, b) { return [a[0] + b[0], a[1] + b[1], a[2] + b[2]]; }
  function scale(a, s) { return [a[0] * s, a[1] * s, a[2] * s]; }
  function dot(a, b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
  function cross(a, b) { return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]; }
  function normalize(a) { const n = Math.hypot(a[0], a[1], a[2]) || 1; return [a[0] / n, a[1] / n, a[2] / n]; }
  function lookAt(eye, center, up) {
    const z = normalize(sub(eye, center)), x = normalize(cross(up, z)), y = cross(z, x);
    return [x[0], y[0], z[0], 0, x[1], y[1], z[1], 0, x[2], y[2], z[2], 0,
            -dot(x, eye), -dot(y, eye), -dot(z, eye), 1];
  }
  function multiply(a, b) {
    const out = new Array(16);
    for (let c = 0; c < 4; c++) for (let r = 0; r < 4; r++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
      out[c * 4 + r] = s;
    }
    return out;
  }
  function transform(m, p) {
    const x = m[0] * p[0] + m[4] * p[1] + m[8] * p[2] + m[12], y = m[1] * p[0] + m[5] * p[1] + m[9] * p[2] + m[13];
    const z = m[2] * p[0] + m[6] * p[1] + m[10] * p[2] + m[14], w = m[3] * p[0] + m[7] * p[1] + m[11] * p[2] + m[15];
    return [x / w, y / w, z / w, w];
  }

  function decodeBase64(text, Type) {
    const bytes = atob(text), buffer = new ArrayBuffer(bytes.length), view = new Uint8Array(buffer);
    for (let i = 0; i < bytes.length; i++) view[i] = bytes.charCodeAt(i);
    return new Type(buffer);
  }

  // ------------------------------------------------------------------ shaders
  const MESH_VS = "attribute vec3 position; attribute vec3 normal; uniform mat4 view; uniform mat4 projection;" +
    "varying vec3 vNormal; varying vec3 vEye;" +
    "void main() { vec4 eye = view * vec4(position, 1.0); vEye = eye.xyz; vNormal = mat3(view) * normal;" +
    " gl_Position = projection * eye; }";
  const MESH_FS = "precision mediump float; uniform vec3 color; uniform float opacity; uniform float glow;" +
    "varying vec3 vNormal; varying vec3 vEye;" +
    "void main() { vec3 n = normalize(vNormal); vec3 v = normalize(-vEye); if (dot(n, v) < 0.0) n = -n;" +
    " float diffuse = max(dot(n, v), 0.0); float spec = pow(max(dot(n, normalize(v + vec3(0.3, 0.5, 0.8))), 0.0), 40.0);" +
    " float rim = pow(1.0 - diffuse, 3.0) * glow;" +
    " vec3 c = color * (0.28 + 0.72 * diffuse) + vec3(0.25) * spec + vec3(1.0, 0.35, 0.3) * rim;" +
    " gl_FragColor = vec4(c, opacity); }";
  const FLAT_VS = "attribute vec3 position; uniform mat4 view; uniform mat4 projection; uniform float size;" +
    "void main() { gl_Position = projection * view * vec4(position, 1.0); gl_PointSize = size; }";
  const FLAT_FS = "precision mediump float; uniform vec3 color; uniform float opacity; uniform float round;" +
    "void main() { if (round > 0.5) { vec2 d = gl_PointCoord - vec2(0.5); if (dot(d, d) > 0.25) discard; }" +
    " gl_FragColor = vec4(color, opacity); }";

  function program(gl, vs, fs) {
    function shader(type, source) {
      const s = gl.createShader(type);
      gl.shaderSource(s, source);
      gl.compileShader(s);
      if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
      return s;
    }
    const p = gl.createProgram();
    gl.attachShader(p, shader(gl.VERTEX_SHADER, vs));
    gl.attachShader(p, shader(gl.FRAGMENT_SHADER, fs));
    gl.linkProgram(p);
    if (!gl.getProgramParameter(p, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(p));
    const info = {program: p, attributes: {}, uniforms: {}};
    for (const name of ["position", "normal"]) info.attributes[name] = gl.getAttribLocation(p, name);
    for (const name of ["view", "projection", "color", "opacity", "glow", "size", "round"]) {
      info.uniforms[name] = gl.getUniformLocation(p, name);
    }
    return info;
  }

  function vertexNormals(positions, indices) {
    const normals = new Float32Array(positions.length);
    for (let t = 0; t < indices.length; t += 3) {
      const a = indices[t] * 3, b = indices[t + 1] * 3, c = indices[t + 2] * 3;
      const e1 = [positions[b] - positions[a], positions[b + 1] - positions[a + 1], positions[b + 2] - positions[a + 2]];
      const e2 = [positions[c] - positions[a], positions[c + 1] - positions[a + 1], positions[c + 2] - positions[a + 2]];
      const n = cross(e1, e2);  // length = twice the area: area-weighted
      for (const v of [a, b, c]) { normals[v] += n[0]; normals[v + 1] += n[1]; normals[v + 2] += n[2]; }
    }
    for (let v = 0; v < normals.length; v += 3) {
      const n = Math.hypot(normals[v], normals[v + 1], normals[v + 2]) || 1;
      normals[v] /= n; normals[v + 1] /= n; normals[v + 2] /= n;
    }
    return normals;
  }

  function buffer(gl, target, data) {
    const b = gl.createBuffer();
    gl.bindBuffer(target, b);
    gl.bufferData(target, data, gl.STATIC_DRAW);
    return b;
  }

  // ------------------------------------------------------------------ the viewer
  function create(canvas, scene, options) {
    options = options || {};
    const gl = canvas.getContext("webgl", {antialias: true, preserveDrawingBuffer: true, alpha: false});
    if (!gl) throw new Error("WebGL is not available in this browser");
    const meshProgram = program(gl, MESH_VS, MESH_FS), flatProgram = program(gl, FLAT_VS, FLAT_FS);
    const background = options.background || [0.11, 0.12, 0.14];
    const focus = scene.focus.slice();
    const items = [];

    for (const m of scene.meshes) {
      const q = decodeBase64(m.positions, Uint16Array), indices = decodeBase64(m.indices, Uint16Array);
      const positions = new Float32Array(q.length);
      for (let i = 0; i < q.length; i++) positions[i] = m.origin[i % 3] + m.scale[i % 3] * q[i];
      items.push({kind: "mesh", name: m.name, label: m.label, tagged: !!m.tagged, color: m.color.slice(), opacity: m.opacity,
                  highlight: !!m.highlight, visible: true, anchor: m.anchor, count: indices.length,
                  position: buffer(gl, gl.ARRAY_BUFFER, positions),
                  normal: buffer(gl, gl.ARRAY_BUFFER, vertexNormals(positions, indices)),
                  index: buffer(gl, gl.ELEMENT_ARRAY_BUFFER, indices)});
    }
    for (const l of scene.lines || []) {
      const flat = new Float32Array(l.points.flat());
      items.push({kind: "line", name: l.name, label: l.label, tagged: !!l.tagged, color: l.color.slice(), opacity: l.opacity,
                  visible: true, anchor: l.points[l.points.length - 1], count: l.points.length,
                  position: buffer(gl, gl.ARRAY_BUFFER, flat)});
    }
    for (const p of scene.markers || []) {
      items.push({kind: "marker", name: p.name, label: p.label, tagged: p.tagged !== false, color: p.color.slice(),
                  opacity: 1, visible: true,
                  anchor: p.position, count: 1, size: p.size_px, position: buffer(gl, gl.ARRAY_BUFFER, new Float32Array(p.position))});
    }

    const camera = {};
    function resetView() {
      camera.azimuth = (scene.view.azimuth_deg || 0) * Math.PI / 180;
      camera.elevation = (scene.view.elevation_deg || 0) * Math.PI / 180;
      camera.distance = scene.view.distance_mm || 250;
      camera.target = focus.slice();
      render();
    }
    function eyePosition() {
      // Azimuth 0 looks from posterior (+y), +90 from the patient's left (+x); elevation toward the head.
      const ce = Math.cos(camera.elevation);
      return add(camera.target, scale([Math.sin(camera.azimuth) * ce, Math.cos(camera.azimuth) * ce,
                                        Math.sin(camera.elevation)], camera.distance));
    }

    // ---------------------------------------------------------------- labels
    const overlay = document.createElement("div");
    overlay.className = "viewer3d-labels";
    overlay.style.cssText = "position:absolute;left:0;top:0;right:0;bottom:0;pointer-events:none;overflow:hidden;";
    if (canvas.parentNode && options.labels !== false) {
      if (getComputedStyle(canvas.parentNode).position === "static") canvas.parentNode.style.position = "relative";
      canvas.parentNode.appendChild(overlay);
    }
    const labelFont = (options.labelFontPx || 12) + "px sans-serif";
    for (const item of items) {
      if (!item.label || !item.tagged) continue;
      item.tag = document.createElement("span");
      item.tag.textContent = item.label;
      item.tag.style.cssText = "position:absolute;font:" + labelFont + ";color:#fff;white-space:nowrap;" +
        "text-shadow:0 0 3px #000,0 0 2px #000;transform:translate(6px,-50%);";
      if (item.highlight) item.tag.style.color = "#ff8a80";
      overlay.appendChild(item.tag);
    }
    // Leader lines are thin rotated boxes and dots round ones: plain HTML over the canvas.
    const callouts = (scene.annotations || []).map(a => {
      const colour = "rgb(" + a.color.map(c => Math.round(c * 255)).join(",") + ")";
      const line = document.createElement("span"), dot = document.createElement("span"), box = document.createElement("span");
      line.style.cssText = "position:absolute;height:2px;background:" + colour + ";transform-origin:0 50%;";
      dot.style.cssText = "position:absolute;width:9px;height:9px;margin:-4.5px 0 0 -4.5px;border-radius:50%;" +
        "background:" + colour + ";box-shadow:0 0 0 1px #000;";
      box.className = "viewer3d-callout";
      box.textContent = a.text;
      box.style.cssText = "position:absolute;font:600 " + (options.annotationFontPx || 14) + "px sans-serif;" +
        "color:#fff;background:rgba(12,16,22,0.82);border:2px solid " + colour + ";border-radius:8px;" +
        "padding:3px 8px;white-space:nowrap;";
      overlay.append(line, dot, box);
      return {annotation: a, box: box, line: line, dot: dot};
    });

    function resize() {
      const ratio = window.devicePixelRatio || 1;
      const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
      const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
      if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
    }

    function drawItem(item, view, projection) {
      const p = item.kind === "mesh" ? meshProgram : flatProgram;
      gl.useProgram(p.program);
      gl.uniformMatrix4fv(p.uniforms.view, false, view);
      gl.uniformMatrix4fv(p.uniforms.projection, false, projection);
      gl.uniform3fv(p.uniforms.color, item.color);
      gl.uniform1f(p.uniforms.opacity, item.opacity);
      gl.bindBuffer(gl.ARRAY_BUFFER, item.position);
      gl.enableVertexAttribArray(p.attributes.position);
      gl.vertexAttribPointer(p.attributes.position, 3, gl.FLOAT, false, 0, 0);
      if (item.kind === "mesh") {
        gl.uniform1f(p.uniforms.glow, item.highlight ? 1.0 : 0.0);
        gl.bindBuffer(gl.ARRAY_BUFFER, item.normal);
        gl.enableVertexAttribArray(p.attributes.normal);
        gl.vertexAttribPointer(p.attributes.normal, 3, gl.FLOAT, false, 0, 0);
        gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, item.index);
        gl.drawElements(gl.TRIANGLES, item.count, gl.UNSIGNED_SHORT, 0);
        gl.disableVertexAttribArray(p.attributes.normal);
        return;
      }
      gl.uniform1f(p.uniforms.size, (item.size || 2) * (window.devicePixelRatio || 1));
      gl.uniform1f(p.uniforms.round, item.kind === "marker" ? 1.0 : 0.0);
      gl.drawArrays(item.kind === "marker" ? gl.POINTS : gl.LINE_STRIP, 0, item.count);
    }

    function render() {
      resize();
      gl.viewport(0, 0, canvas.width, canvas.height);
      gl.clearColor(background[0], background[1], background[2], 1);
      gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
      gl.enable(gl.DEPTH_TEST);
      const eye = eyePosition();
      const view = lookAt(eye, camera.target, [0, 0, 1]);
      // 35 degrees across the narrower side: a tall (phone) canvas shows as much as a square one.
      const aspect = canvas.width / canvas.height, half = Math.atan(Math.tan(17.5 * Math.PI / 180) / Math.min(1, aspect));
      const projection = perspective(2 * half, aspect, Math.max(1, camera.distance / 100), camera.distance * 10);
      const shown = items.filter(i => i.visible && i.opacity > 0);
      const opaque = shown.filter(i => i.opacity >= 0.999);
      const clear = shown.filter(i => i.opacity < 0.999)
        .sort((a, b) => dot(sub(b.anchor, eye), sub(b.anchor, eye)) - dot(sub(a.anchor, eye), sub(a.anchor, eye)));
      gl.disable(gl.BLEND);
      gl.depthMask(true);
      for (const item of opaque) drawItem(item, view, projection);
      gl.enable(gl.BLEND);
      gl.blendFunc(gl.SRC_ALPHA, gl.ONE_MINUS_SRC_ALPHA);
      gl.depthMask(false);
      for (const item of clear) drawItem(item, view, projection);
      gl.depthMask(true);
      const matrix = multiply(projection, view), w = canvas.clientWidth, h = canvas.clientHeight;
      placeCallouts(matrix, w, h);
      for (const item of items) {
        if (!item.tag) continue;
        const p = transform(matrix, item.anchor);
        const onScreen = item.visible && p[3] > 0 && Math.abs(p[0]) <= 1 && Math.abs(p[1]) <= 1;
        item.tag.style.display = onScreen ? "block" : "none";
        if (onScreen) {
          item.tag.style.left = ((p[0] + 1) / 2 * w).toFixed(1) + "px";
          item.tag.style.top = ((1 - p[1]) / 2 * h).toFixed(1) + "px";
        }
      }
    }

    function placeCallouts(matrix, w, h) {
      const centre = transform(matrix, camera.target);
      const cx = (centre[0] + 1) / 2 * w, cy = (1 - centre[1]) / 2 * h, reach = Math.min(w, h) * 0.22;
      const placed = [];
      for (const c of callouts) {
        const p = transform(matrix, c.annotation.position);
        const shown = p[3] > 0 && Math.abs(p[0]) <= 1 && Math.abs(p[1]) <= 1;
        for (const element of [c.box, c.line, c.dot]) element.style.display = shown ? "" : "none";
        if (!shown) continue;
        const x = (p[0] + 1) / 2 * w, y = (1 - p[1]) / 2 * h;
        let dx = x - cx, dy = y - cy;
        const length = Math.hypot(dx, dy);
        if (length < 1) { dx = 1; dy = -1; } else { dx /= length; dy /= length; }
        const bw = c.box.offsetWidth, bh = c.box.offsetHeight;
        const left = Math.max(2, Math.min(w - bw - 2, x + dx * reach - bw / 2));
        let top = Math.max(2, Math.min(h - bh - 2, y + dy * reach - bh / 2));
        // Never on its own point (a box pushed back from the canvas edge can land there): above or below it.
        if (x >= left - 4 && x <= left + bw + 4 && y >= top - 4 && y <= top + bh + 4) {
          top = y + 16 + bh <= h - 2 ? y + 16 : Math.max(2, y - 16 - bh);
        }
        // Clear of the callouts already placed: below one it overlaps, or above it near the bottom.
        for (const other of placed) {
          if (left < other.left + other.width && other.left < left + bw && top < other.top + other.height && other.top < top + bh) {
            top = other.top + other.height + bh + 6 <= h ? other.top + other.height + 4 : other.top - bh - 4;
          }
        }
        placed.push({left: left, top: top, width: bw, height: bh});
        c.box.style.left = left.toFixed(1) + "px";
        c.box.style.top = top.toFixed(1) + "px";
        const ex = Math.max(left, Math.min(left + bw, x)), ey = Math.max(top, Math.min(top + bh, y));
        c.line.style.left = ex.toFixed(1) + "px";
        c.line.style.top = (ey - 1).toFixed(1) + "px";
        c.line.style.width = Math.hypot(x - ex, y - ey).toFixed(1) + "px";
        c.line.style.transform = "rotate(" + Math.atan2(y - ey, x - ex).toFixed(4) + "rad)";
        c.dot.style.left = x.toFixed(1) + "px";
        c.dot.style.top = y.toFixed(1) + "px";
      }
    }

    function rotate(azimuthDeg, elevationDeg) {
      camera.azimuth += azimuthDeg * Math.PI / 180;
      camera.elevation = Math.max(-1.5, Math.min(1.5, camera.elevation + elevationDeg * Math.PI / 180));
      render();
    }
    function zoom(factor) {
      camera.distance = Math.max(20, Math.min(2000, camera.distance / factor));
      render();
    }

    // ---------------------------------------------------------------- interaction
    let drag = null;
    canvas.addEventListener("contextmenu", e => e.preventDefault());
    canvas.addEventListener("pointerdown", e => {
      drag = {x: e.clientX, y: e.clientY, pan: e.shiftKey || e.button === 2};
      canvas.setPointerCapture(e.pointerId);
    });
    canvas.addEventListener("pointerup", e => { drag = null; canvas.releasePointerCapture(e.pointerId); });
    canvas.addEventListener("pointercancel", () => { drag = null; });  // e.g. the page scrolled (touch-action)
    canvas.addEventListener("pointermove", e => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      drag.x = e.clientX; drag.y = e.clientY;
      if (drag.pan) {
        const eye = eyePosition(), forward = normalize(sub(camera.target, eye));
        const right = normalize(cross(forward, [0, 0, 1])), up = cross(right, forward);
        const perPixel = camera.distance * 0.0012;
        camera.target = add(camera.target, add(scale(right, -dx * perPixel), scale(up, dy * perPixel)));
      } else {
        camera.azimuth -= dx * 0.008;
        camera.elevation = Math.max(-1.5, Math.min(1.5, camera.elevation + dy * 0.008));
      }
      render();
    });
    canvas.addEventListener("wheel", e => {
      e.preventDefault();
      camera.distance = Math.max(20, Math.min(2000, camera.distance * Math.exp(e.deltaY * 0.001)));
      render();
    }, {passive: false});
    canvas.addEventListener("dblclick", resetView);
    if (!canvas.hasAttribute("tabindex")) canvas.tabIndex = 0;
    canvas.addEventListener("keydown", e => {
      const keys = {ArrowLeft: () => rotate(-10, 0), ArrowRight: () => rotate(10, 0), ArrowUp: () => rotate(0, 10),
                    ArrowDown: () => rotate(0, -10), "+": () => zoom(1.15), "=": () => zoom(1.15), "-": () => zoom(1 / 1.15),
                    "0": resetView, Home: resetView};
      if (!keys[e.key]) return;
      e.preventDefault();
      keys[e.key]();
    });
    window.addEventListener("resize", render);

    function find(name) {
      const item = items.find(i => i.name === name);
      if (!item) throw new Error("no scene item called " + name);
      return item;
    }
    const api = {
      items: () => items.map(i => ({name: i.name, label: i.label, kind: i.kind, visible: i.visible,
                                    opacity: i.opacity, color: i.color.slice(), highlight: !!i.highlight})),
      setVisible(name, visible) { find(name).visible = !!visible; render(); },
      setOpacity(name, opacity) { find(name).opacity = Math.max(0, Math.min(1, opacity)); render(); },
      setColor(name, color) { find(name).color = color.slice(0, 3); render(); },
      rotate, zoom, resetView, render,
    };
    if (options.legend) buildLegend(options.legend, items, api, options.legendOpacity !== false);
    resetView();
    return api;
  }

  function buildLegend(element, items, api, opacitySliders) {
    for (const item of items) {
      const row = document.createElement("label");
      row.className = "viewer3d-legend-row";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = item.visible;
      box.addEventListener("change", () => api.setVisible(item.name, box.checked));
      const swatch = document.createElement("span");
      swatch.className = "viewer3d-swatch";
      swatch.style.background = "rgb(" + item.color.map(c => Math.round(c * 255)).join(",") + ")";
      const text = document.createElement("span");
      text.textContent = item.label || item.name;
      if (item.highlight) text.style.fontWeight = "bold";
      row.append(box, swatch, text);
      if (item.kind === "mesh" && opacitySliders) {
        const slider = document.createElement("input");
        slider.type = "range"; slider.min = "0"; slider.max = "100"; slider.value = String(Math.round(item.opacity * 100));
        slider.title = "opacity";
        slider.addEventListener("input", () => api.setOpacity(item.name, Number(slider.value) / 100));
        row.append(slider);
      }
      element.appendChild(row);
    }
  }

  // Create a viewer on the canvas with the scene JSON held in the element ``dataElement``; the canvas's
  // data-ready attribute becomes "true", or "error" (with ``unavailable`` shown) where WebGL fails.
  function mount(canvas, dataElement, options, unavailable) {
    try {
      const viewer = create(canvas, JSON.parse(dataElement.textContent), options);
      canvas.setAttribute("data-ready", "true");
      return viewer;
    } catch (error) {
      const note = document.createElement("p");
      note.style.cssText = "color:#fff;padding:1em";
      note.textContent = (unavailable || "3D view unavailable") + ": " + String(error.message);
      canvas.parentNode.appendChild(note);
      canvas.setAttribute("data-ready", "error");
      return null;
    }
  }

  global.SpinesimViewer3D = {create: create, mount: mount};
})(typeof window !== "undefined" ? window : this);
