// The live text box: the text reaches the server a moment after the last keystroke
// (debounced), on leaving the box and on Ctrl+Enter, so the page's preview follows the
// typing. The box shows the server's text when first drawn and whenever it is drawn
// for another draft (another key); otherwise it is left alone, so an answer that is a
// keystroke behind never overwrites what is being typed.
const codePoints = (text) => {
  let n = 0
  for (const _ of text) n += 1 // the count Python's len() gives: an emoji is one
  return n
}

export default function ({ parentElement, data, setStateValue }) {
  const box = parentElement.querySelector("textarea")
  const count = parentElement.querySelector(".count")
  parentElement.querySelector("label").textContent = data.label
  parentElement.querySelector(".note").textContent = data.note
  box.style.height = `${data.height}px`
  box.title = data.help
  if (box.dataset.key !== data.key) {
    box.value = data.value
    box.dataset.key = data.key
    box.sent = data.value
  }
  const limit = data.limit.toLocaleString("en-US")
  const show = () => {
    const n = codePoints(box.value)
    count.textContent = `${n.toLocaleString("en-US")} / ${limit} characters`
    count.classList.toggle("over", n > data.limit)
  }
  const send = () => {
    clearTimeout(box.timer)
    box.timer = undefined
    if (box.value !== box.sent) {
      box.sent = box.value
      setStateValue("value", box.value)
    }
  }
  box.oninput = () => {
    show()
    clearTimeout(box.timer)
    box.timer = setTimeout(send, data.debounce)
  }
  box.onblur = send
  box.onkeydown = (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault()
      send()
    }
  }
  show()
  return () => {
    if (box.timer !== undefined) send() // unmounted mid-pause: the last keystrokes count
  }
}
